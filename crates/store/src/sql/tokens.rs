//! [`crate::TokenStore`]: authorization codes, token families, access and refresh tokens.

use gatehouse_core::secret::SecretDigest;
use gatehouse_core::Timestamp;

/// Tokens stored by one multi-row INSERT: at most 12 parameters each, well inside both databases'
/// limits on parameters per statement.
pub(crate) const ROWS_PER_STATEMENT: usize = 256;

/// `SELECT` of a token of type `T` joined to its family (`f_` columns), by digest.
pub(crate) fn token_with_family<T: crate::Row>() -> super::ByKey {
    super::ByKey::new(
        &format!(
            "{}, {}",
            super::columns_of::<T>("t", ""),
            super::columns_of::<gatehouse_core::token::TokenFamily>("f", "f_"),
        ),
        &format!(
            "{} t JOIN token_families f ON f.family_id = t.family_id",
            T::TABLE
        ),
        "t.token_digest",
    )
}

/// Spends the unused codes among `VALUES (digest, family ID, now)`, returning 0 and the digest
/// of each: the text before and after the rows.
pub(crate) const SPEND_CODES: [&str; 2] = [
    "UPDATE authorization_codes SET used_at = v.column3 FROM (",
    ") AS v WHERE authorization_codes.code_digest = v.column1 \
     AND authorization_codes.family_id = v.column2 AND authorization_codes.used_at IS NULL \
     RETURNING 0, authorization_codes.code_digest",
];

/// Spends the live refresh tokens (unused, unrevoked, unexpired at `now`, of a live family)
/// among `VALUES (digest, family ID, now)`, returning [`SPENT_REFRESH_TOKEN`] and the digest of
/// each.
pub(crate) const SPEND_REFRESH_TOKENS: [&str; 2] = [
    "UPDATE refresh_tokens SET used_at = v.column3 FROM (",
    ") AS v WHERE refresh_tokens.token_digest = v.column1 \
     AND refresh_tokens.family_id = v.column2 AND refresh_tokens.used_at IS NULL \
     AND refresh_tokens.revoked_at IS NULL AND refresh_tokens.expires_at > v.column3 \
     AND EXISTS (SELECT 1 FROM token_families f \
         WHERE f.family_id = refresh_tokens.family_id AND f.revoked_at IS NULL) \
     RETURNING 1, refresh_tokens.token_digest",
];

/// What the first column of a spent row says it is: [`SPEND_CODES`]'s 0 or
/// [`SPEND_REFRESH_TOKENS`]'s 1 (they can run as one script).
pub(crate) const SPENT_REFRESH_TOKEN: i32 = 1;

/// The writes one transaction of [`crate::TokenStore::commit_writes`] commits: the whole call's,
/// or one of them alone.
#[derive(Clone, Copy)]
pub(crate) struct Batch<'a> {
    pub(crate) issues: &'a [crate::IssueWrite],
    pub(crate) redeems: &'a [crate::RedeemWrite],
    pub(crate) rotations: &'a [crate::RotateWrite],
}

impl<'a> Batch<'a> {
    /// Nothing to write.
    pub(crate) const EMPTY: Batch<'static> = Batch {
        issues: &[],
        redeems: &[],
        rotations: &[],
    };

    /// All of `writes`.
    pub(crate) fn of(writes: &'a crate::Writes) -> Self {
        Self {
            issues: &writes.issues,
            redeems: &writes.redeems,
            rotations: &writes.rotations,
        }
    }
}

/// What a `SPEND_*` statement spends for one write: the write's index among those of its
/// kind, the presented digest, the family it must belong to, and the time.
pub(crate) type Spend<'a> = (usize, &'a SecretDigest, &'a str, Timestamp);

/// The spends of `writes` (all of one kind; `spend` reads a write's digest, family and time),
/// each digest's first presentation only: a second presentation in the same batch is settled
/// after the first, as its replay or reuse.
pub(crate) fn first_presentations<'a, W>(
    writes: &'a [W],
    spend: impl Fn(&'a W) -> (&'a SecretDigest, &'a str, Timestamp),
) -> Vec<Spend<'a>> {
    let mut seen = std::collections::HashSet::new();
    writes
        .iter()
        .enumerate()
        .filter_map(|(i, write)| {
            let (digest, family, now) = spend(write);
            seen.insert(*digest.hash())
                .then_some((i, digest, family, now))
        })
        .collect()
}

/// The writes among `writes` (all of one kind) whose index is in `spent`.
pub(crate) fn those_spent<'a, W>(
    writes: &'a [W],
    spent: &'a std::collections::HashSet<usize>,
) -> impl Iterator<Item = &'a W> + Clone {
    writes
        .iter()
        .enumerate()
        .filter(|(i, _)| spent.contains(i))
        .map(|(_, write)| write)
}

/// `NotFound(what)` for each of `writes`.
pub(crate) fn not_found(writes: &crate::Writes, what: &'static str) -> crate::Outcomes {
    fn each<W, T>(writes: &[W], what: &'static str) -> Vec<Result<T, crate::StoreError>> {
        writes
            .iter()
            .map(|_| Err(crate::StoreError::NotFound(what)))
            .collect()
    }
    crate::Outcomes {
        issues: each(&writes.issues, what),
        redeems: each(&writes.redeems, what),
        rotations: each(&writes.rotations, what),
    }
}

macro_rules! impl_token_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::invalidation::Invalidation;
            use gatehouse_core::secret::SecretDigest;
            use gatehouse_core::token::{
                AccessToken, AuthorizationCode, FamilyId, RefreshToken, TokenFamily, TokenView,
            };
            use gatehouse_core::Timestamp;
            use sqlx::QueryBuilder;
            use std::collections::{BTreeSet, HashSet};
            use std::slice::from_ref;
            use std::sync::LazyLock;
            use $crate::rows::{AccessTokenRow, AuthorizationCodeRow, RefreshTokenRow};
            use $crate::sql::tokens::{
                first_presentations, not_found, those_spent, token_with_family, Batch,
                Spend, ROWS_PER_STATEMENT, SPEND_CODES, SPEND_REFRESH_TOKENS, SPENT_REFRESH_TOKEN,
            };
            use $crate::rows::Named;
            use $crate::sql::{ByKey, Dialect, Script, WriteTransaction};
            use $crate::{
                only, Issue, Outcomes, Redemption, Rotation, StoreError, TokenStore, Writes,
            };

            static FIND_ACCESS: LazyLock<ByKey> = LazyLock::new(token_with_family::<AccessToken>);
            static FIND_REFRESH: LazyLock<ByKey> =
                LazyLock::new(token_with_family::<RefreshToken>);
            static FIND_CODE: LazyLock<ByKey> = LazyLock::new(|| {
                ByKey::new(
                    <AuthorizationCode as $crate::Row>::COLUMNS,
                    <AuthorizationCode as $crate::Row>::TABLE,
                    "code_digest",
                )
            });

            impl $store {
                /// Revokes a family inside the caller's transaction and, if it was live,
                /// publishes its invalidation there too.
                async fn revoke_family_in(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    family_id: &str,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE token_families SET revoked_at = $1 \
                         WHERE family_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(family_id)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    let family = Invalidation::Family(FamilyId::from_stored(family_id.to_owned()));
                    Self::publish_in(&mut *conn, &family, now).await?;
                    Ok(true)
                }

                /// One transaction of [`TokenStore::commit_writes`]. Its statements, each
                /// for every write of its kind at once: spend the codes, spend the refresh
                /// tokens, revoke the rotated families' previous access tokens, insert the
                /// families, the access tokens and the refresh tokens, publish the rotated
                /// families' invalidations, delete the issued families whose minting key is
                /// revoked. A write whose code or token was not
                /// spent (unknown, spent before, or presented again in this batch) is then
                /// settled on its own, as a replay or reuse, after the inserts, so a second
                /// presentation in the same batch finds what the first stored.
                async fn commit_batch(&self, batch: Batch<'_>) -> Result<Outcomes, StoreError> {
                    let redeems = first_presentations(batch.redeems, |w| {
                        (&w.code, w.family.family_id.as_str(), w.now)
                    });
                    let rotations = first_presentations(batch.rotations, |w| {
                        (&w.presented, w.access.family_id.as_str(), w.now)
                    });
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = self.begin_write(&mut writer).await?;
                    // SQLite's write lock is taken here, by the `BEGIN IMMEDIATE` that goes
                    // with the first script.
                    let (codes, refresh_tokens) = Self::spend(&mut tx, &redeems, &rotations).await?;
                    let redeemed: HashSet<usize> = redeems
                        .iter()
                        .filter(|r| codes.contains(&r.1.stored()))
                        .map(|r| r.0)
                        .collect();
                    let mut rotated: HashSet<usize> = HashSet::new();
                    let mut rotated_families = Vec::new();
                    let spent = rotations
                        .iter()
                        .filter(|r| refresh_tokens.contains(&r.1.stored()));
                    for rotation in spent {
                        rotated.insert(rotation.0);
                        rotated_families.push((rotation.2, rotation.3));
                    }
                    let spent_redeems = those_spent(batch.redeems, &redeemed);
                    let spent_rotations = those_spent(batch.rotations, &rotated);
                    let families: Vec<&TokenFamily> = batch
                        .issues
                        .iter()
                        .map(|w| &w.family)
                        .chain(spent_redeems.clone().map(|w| &w.family))
                        .collect();
                    let accesses: Vec<&AccessToken> = batch
                        .issues
                        .iter()
                        .map(|w| &w.access)
                        .chain(spent_redeems.clone().map(|w| &w.access))
                        .chain(spent_rotations.clone().map(|w| &w.access))
                        .collect();
                    let refreshes: Vec<&RefreshToken> = spent_redeems
                        .map(|w| &w.refresh)
                        .chain(spent_rotations.map(|w| &w.refresh))
                        .collect();
                    let invalidations: Vec<String> = rotated_families
                        .iter()
                        .map(|(family, _)| {
                            Invalidation::Family(FamilyId::from_stored((*family).to_owned()))
                                .to_string()
                        })
                        .collect();
                    // What the spends decided, in one script: the rotated families' previous
                    // access tokens revoked (before their new ones are inserted), the new rows,
                    // and the rotated families' invalidations, which make nodes drop those
                    // access tokens.
                    let mut script = tx.script();
                    for chunk in rotated_families.chunks(ROWS_PER_STATEMENT) {
                        let query = script.statement(
                            "UPDATE access_tokens SET revoked_at = v.column2 FROM (",
                        );
                        query.push_values(chunk, |mut row, (family, now)| {
                            row.push_bind(*family).push_bind(now.unix());
                        });
                        query.push(
                            ") AS v WHERE access_tokens.family_id = v.column1 \
                             AND access_tokens.revoked_at IS NULL",
                        );
                    }
                    for chunk in families.chunks(ROWS_PER_STATEMENT) {
                        <$db as $crate::Insert>::push_insert(script.statement(""), chunk);
                    }
                    for chunk in accesses.chunks(ROWS_PER_STATEMENT) {
                        <$db as $crate::Insert>::push_insert(script.statement(""), chunk);
                    }
                    for chunk in refreshes.chunks(ROWS_PER_STATEMENT) {
                        <$db as $crate::Insert>::push_insert(script.statement(""), chunk);
                    }
                    if let Some(latest) = rotated_families.iter().map(|r| r.1).max() {
                        for chunk in invalidations.chunks(ROWS_PER_STATEMENT) {
                            Self::push_publish_all(&mut script, chunk, latest);
                        }
                    }
                    // Families minted by a key that is no longer live go again, with their
                    // tokens, in the same script (see `push_refuse_revoked_keys`).
                    let minted: Vec<&str> = batch
                        .issues
                        .iter()
                        .filter(|w| w.family.key_id.is_some())
                        .map(|w| w.family.family_id.as_str())
                        .collect();
                    for chunk in minted.chunks(ROWS_PER_STATEMENT) {
                        Self::push_refuse_revoked_keys(&mut script, chunk);
                    }
                    // The COMMIT goes with this script unless a write to settle as a replay
                    // or reuse follows it.
                    let more = redeemed.len() < batch.redeems.len()
                        || rotated.len() < batch.rotations.len();
                    if !more {
                        tx.end(&mut script);
                    }
                    let revoked_keys = Self::run(tx.connection(), script)
                        .await
                        .map_err(|e| StoreError::from(e).naming("token", TokenFamily::MISSING))?;
                    let issues = batch
                        .issues
                        .iter()
                        .map(|w| {
                            Ok(match &w.family.key_id {
                                Some(key) if revoked_keys.contains(key.as_str()) => {
                                    Issue::KeyRevoked
                                }
                                _ => Issue::Stored,
                            })
                        })
                        .collect();
                    let mut redemptions = Vec::with_capacity(batch.redeems.len());
                    for (i, w) in batch.redeems.iter().enumerate() {
                        redemptions.push(if redeemed.contains(&i) {
                            Ok(Redemption::Issued)
                        } else {
                            Self::code_replayed(tx.connection(), &w.code, w.now).await?
                        });
                    }
                    let mut rotations = Vec::with_capacity(batch.rotations.len());
                    for (i, w) in batch.rotations.iter().enumerate() {
                        rotations.push(Ok(if rotated.contains(&i) {
                            Rotation::Rotated
                        } else {
                            Self::refresh_token_reused(tx.connection(), &w.presented, w.now).await?
                        }));
                    }
                    if more {
                        let mut last = tx.script();
                        tx.end(&mut last);
                        Self::run(tx.connection(), last).await?;
                    }
                    tx.committed().await?;
                    Ok(Outcomes {
                        issues,
                        redeems: redemptions,
                        rotations,
                    })
                }

                /// Each of `writes` in its own transaction, so that a failure is only its
                /// write's outcome.
                async fn commit_each(&self, writes: &Writes) -> Result<Outcomes, StoreError> {
                    let issues = |w| Batch { issues: w, ..Batch::EMPTY };
                    let redeems = |w| Batch { redeems: w, ..Batch::EMPTY };
                    let rotations = |w| Batch { rotations: w, ..Batch::EMPTY };
                    Ok(Outcomes {
                        issues: self.each_alone(&writes.issues, issues, |o| o.issues).await,
                        redeems: self.each_alone(&writes.redeems, redeems, |o| o.redeems).await,
                        rotations: self
                            .each_alone(&writes.rotations, rotations, |o| o.rotations)
                            .await,
                    })
                }

                /// Each of `writes` (all of one kind) committed alone, in the batch of one
                /// that `alone_in` makes of it; `kind` picks its kind's outcomes.
                async fn each_alone<'w, W, T>(
                    &self,
                    writes: &'w [W],
                    alone_in: impl Fn(&'w [W]) -> Batch<'w>,
                    kind: impl Fn(Outcomes) -> Vec<Result<T, StoreError>>,
                ) -> Vec<Result<T, StoreError>> {
                    let mut each = Vec::with_capacity(writes.len());
                    for write in writes {
                        let outcome = self.commit_batch(alone_in(from_ref(write))).await;
                        each.push(outcome.map(&kind).and_then(only));
                    }
                    each
                }

                /// Runs `script`'s statements on `conn`; returns the text column of the rows
                /// of those whose rows are wanted.
                async fn run(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    script: Script<'_, $db>,
                ) -> Result<HashSet<String>, sqlx::Error> {
                    let mut returned = HashSet::new();
                    for (mut query, wanted) in script.into_parts() {
                        if !wanted {
                            query.build().execute(&mut *conn).await?;
                            continue;
                        }
                        let rows: Vec<(String,)> = query.build_query_as().fetch_all(&mut *conn).await?;
                        returned.extend(rows.into_iter().map(|(text,)| text));
                    }
                    Ok(returned)
                }

                /// Runs [`SPEND_CODES`] for `redeems` and [`SPEND_REFRESH_TOKENS`] for
                /// `rotations` (each `(write, digest, family, now)`), as one script; returns
                /// the digests they spent: the codes and the refresh tokens.
                async fn spend(
                    tx: &mut WriteTransaction<'_, $db>,
                    redeems: &[Spend<'_>],
                    rotations: &[Spend<'_>],
                ) -> Result<(HashSet<Vec<u8>>, HashSet<Vec<u8>>), StoreError> {
                    let (mut codes, mut refresh_tokens) = (HashSet::new(), HashSet::new());
                    if redeems.is_empty() && rotations.is_empty() {
                        return Ok((codes, refresh_tokens));
                    }
                    let mut script = tx.script();
                    for (update, spends) in
                        [(SPEND_CODES, redeems), (SPEND_REFRESH_TOKENS, rotations)]
                    {
                        for chunk in spends.chunks(ROWS_PER_STATEMENT) {
                            let query = script.statement(update[0]);
                            query.push_values(chunk, |mut row, (_, digest, family, now)| {
                                row.push_bind(digest.stored())
                                    .push_bind(*family)
                                    .push_bind(now.unix());
                            });
                            query.push(update[1]);
                        }
                    }
                    for mut query in script.into_queries() {
                        let rows: Vec<(i32, Vec<u8>)> =
                            query.build_query_as().fetch_all(tx.connection()).await?;
                        for (kind, digest) in rows {
                            match kind {
                                SPENT_REFRESH_TOKEN => refresh_tokens.insert(digest),
                                _ => codes.insert(digest),
                            };
                        }
                    }
                    Ok((codes, refresh_tokens))
                }

                /// A family minted by a secret key is kept only while its key is live: adds to
                /// `script` the deletion of those among `families` (all minted by a key) whose
                /// key is revoked, returning that key. It follows their inserts. On SQLite the
                /// transaction holds the write lock from its `BEGIN IMMEDIATE`; on PostgreSQL
                /// it share-locks the live keys, so a revocation running now either waits for
                /// this commit and then revokes these families with the key, or committed
                /// first and its key reads as revoked here. Their tokens go with them (`ON
                /// DELETE CASCADE`).
                fn push_refuse_revoked_keys<'a>(script: &mut Script<'a, $db>, families: &[&'a str]) {
                    let query = script.returning_statement(
                        "DELETE FROM token_families WHERE family_id IN (",
                    );
                    let mut list = query.separated(", ");
                    for family in families {
                        list.push_bind(*family);
                    }
                    query.push(
                        ") AND NOT EXISTS (SELECT 1 FROM secret_keys k \
                         WHERE k.key_id = token_families.key_id AND k.revoked_at IS NULL",
                    );
                    query.push(Self::FOR_KEY_SHARE);
                    query.push(") RETURNING key_id");
                }

                /// A redemption whose code was not spent: a replay revokes the family the
                /// code produced; an unknown code is `NotFound("code")`.
                async fn code_replayed(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    code: &SecretDigest,
                    now: Timestamp,
                ) -> Result<Result<Redemption, StoreError>, StoreError> {
                    let earlier: Option<(String,)> = sqlx::query_as(
                        "SELECT family_id FROM authorization_codes WHERE code_digest = $1",
                    )
                    .bind(code.stored())
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some((family_id,)) = earlier else {
                        return Ok(Err(StoreError::NotFound("code")));
                    };
                    Self::revoke_family_in(&mut *conn, &family_id, now).await?;
                    Ok(Ok(Redemption::Replayed))
                }

                /// A rotation whose refresh token was not spent: a spent one revokes its
                /// family (`Reused`); otherwise (unknown, expired, revoked) nothing changes.
                async fn refresh_token_reused(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    presented: &SecretDigest,
                    now: Timestamp,
                ) -> Result<Rotation, StoreError> {
                    let earlier: Option<(Option<i64>, String)> = sqlx::query_as(
                        "SELECT used_at, family_id FROM refresh_tokens WHERE token_digest = $1",
                    )
                    .bind(presented.stored())
                    .fetch_optional(&mut *conn)
                    .await?;
                    match earlier {
                        Some((Some(_), family_id)) => {
                            Self::revoke_family_in(&mut *conn, &family_id, now).await?;
                            Ok(Rotation::Reused)
                        }
                        _ => Ok(Rotation::Invalid),
                    }
                }

                /// Deletes at most `limit` tokens of `table` (access or refresh) that expired
                /// before `before`, then those of their families left without any token.
                async fn purge_tokens(
                    &self,
                    table: &'static str,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let families: Vec<(String,)> = sqlx::query_as(&format!(
                        "DELETE FROM {table} WHERE seq IN \
                         (SELECT seq FROM {table} WHERE expires_at < $1 LIMIT $2) \
                         RETURNING family_id"
                    ))
                    .bind(before.unix())
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                    let deleted = families.len() as u64;
                    let families: BTreeSet<String> =
                        families.into_iter().map(|(f,)| f).collect();
                    let families: Vec<String> = families.into_iter().collect();
                    for chunk in families.chunks(ROWS_PER_STATEMENT) {
                        let mut query = QueryBuilder::<$db>::new(
                            "DELETE FROM token_families WHERE family_id IN (",
                        );
                        let mut list = query.separated(", ");
                        for family in chunk {
                            list.push_bind(family.as_str());
                        }
                        query.push(
                            ") AND NOT EXISTS (SELECT 1 FROM access_tokens a \
                             WHERE a.family_id = token_families.family_id) \
                             AND NOT EXISTS (SELECT 1 FROM refresh_tokens r \
                             WHERE r.family_id = token_families.family_id)",
                        );
                        query.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(deleted)
                }
            }

            #[async_trait::async_trait]
            impl TokenStore for $store {
                async fn insert_authorization_code(
                    &self,
                    code: &AuthorizationCode,
                ) -> Result<(), StoreError> {
                    Self::insert_rows(&mut *self.writer.acquire().await?, from_ref(code)).await
                }

                async fn find_authorization_code(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<AuthorizationCode>, StoreError> {
                    let row: Option<AuthorizationCodeRow> =
                        self.find_by_key(&FIND_CODE, &digest.stored()).await?;
                    let code = row.map(AuthorizationCode::try_from).transpose()?;
                    Ok(code.filter(|c| c.digest == *digest))
                }

                async fn commit_writes(&self, writes: &Writes) -> Result<Outcomes, StoreError> {
                    match self.commit_batch(Batch::of(writes)).await {
                        Ok(outcomes) => Ok(outcomes),
                        // A lone write refers to something deleted meanwhile: that is its
                        // own outcome, and committing it again would find the same.
                        Err(StoreError::NotFound(what)) if writes.len() == 1 => {
                            Ok(not_found(writes, what))
                        }
                        // One write refers to something deleted meanwhile, or the batch (of
                        // any size, one write too) deadlocked with another node's: each again
                        // on its own, once, so the failure is only its own.
                        Err(e) if matches!(e, StoreError::NotFound(_))
                            || e.is_transaction_conflict() =>
                        {
                            self.commit_each(writes).await
                        }
                        Err(e) => Err(e),
                    }
                }

                async fn find_access_token(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<TokenView>, StoreError> {
                    let row: Option<AccessTokenRow> =
                        self.find_by_key(&FIND_ACCESS, &digest.stored()).await?;
                    let view = row.map(TokenView::try_from).transpose()?;
                    Ok(view.filter(|v| v.token.digest == *digest))
                }

                async fn find_refresh_token(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<(RefreshToken, TokenFamily)>, StoreError> {
                    let row: Option<RefreshTokenRow> =
                        self.find_by_key(&FIND_REFRESH, &digest.stored()).await?;
                    let found = row
                        .map(<(RefreshToken, TokenFamily)>::try_from)
                        .transpose()?;
                    Ok(found.filter(|(t, _)| t.digest == *digest))
                }

                async fn revoke_access_token(
                    &self,
                    digest: &SecretDigest,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let done = sqlx::query(
                        "UPDATE access_tokens SET revoked_at = $1 \
                         WHERE token_digest = $2 AND revoked_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(digest.stored())
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    Self::publish_in(&mut *tx, &Invalidation::Token(*digest), now).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn revoke_family(
                    &self,
                    family_id: &FamilyId,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let revoked = Self::revoke_family_in(&mut *tx, family_id.as_str(), now).await?;
                    tx.commit().await?;
                    Ok(revoked)
                }

                async fn purge_codes(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let done = sqlx::query(
                        "DELETE FROM authorization_codes WHERE seq IN \
                         (SELECT seq FROM authorization_codes WHERE expires_at < $1 LIMIT $2)",
                    )
                    .bind(before.unix())
                    .bind(i64::from(limit))
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                    Ok(done.rows_affected())
                }

                async fn purge_access_tokens(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    self.purge_tokens("access_tokens", before, limit).await
                }

                async fn purge_refresh_tokens(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    self.purge_tokens("refresh_tokens", before, limit).await
                }

                async fn purge_revoked_families(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    // Their tokens go with them (ON DELETE CASCADE).
                    let done = sqlx::query(
                        "DELETE FROM token_families WHERE seq IN \
                         (SELECT seq FROM token_families WHERE revoked_at < $1 LIMIT $2)",
                    )
                    .bind(before.unix())
                    .bind(i64::from(limit))
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}
pub(crate) use impl_token_store;
