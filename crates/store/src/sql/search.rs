//! The text searches of the admin lists: a case-insensitive substring match in SQL
//! (`LOWER(column) LIKE pattern`), finished in Rust where the database folds case for ASCII
//! letters only.

/// An admin list search. SQLite's `LOWER()` and `LIKE` fold ASCII letters only (`LOWER('Ö')`
/// is `Ö`), so matched in SQL a search for "Ölwerk" (lowercased to `ölwerk`) would miss
/// "Ölwerk Nord", which PostgreSQL finds. On such a backend ASCII text is matched in SQL and
/// any other here, with Unicode case folding, over every row the rest of the query selects.
pub(crate) struct Search {
    text: Option<String>,
    in_rust: bool,
}

impl Search {
    /// A search for `raw` on a backend that does (or does not) fold case beyond ASCII.
    pub(crate) fn new(raw: Option<&str>, folds_unicode_case: bool) -> Self {
        let text = raw.map(str::trim).filter(|s| !s.is_empty());
        Self {
            in_rust: !folds_unicode_case && text.is_some_and(|t| !t.is_ascii()),
            text: text.map(str::to_owned),
        }
    }

    /// The `LIKE` pattern, or `None` when SQL must not filter by text.
    pub(crate) fn pattern(&self) -> Option<String> {
        if self.in_rust {
            None
        } else {
            contains_pattern(self.text.as_deref())
        }
    }

    /// The SQL `LIMIT` (`-1`, none, when the text is matched here).
    pub(crate) fn sql_limit(&self, limit: u32) -> i64 {
        if self.in_rust {
            -1
        } else {
            i64::from(limit)
        }
    }

    /// The rows whose `fields` contain the text in any case, at most `limit`.
    pub(crate) fn finish<T, const N: usize>(
        &self,
        rows: Vec<T>,
        limit: u32,
        fields: impl Fn(&T) -> [&str; N],
    ) -> Vec<T> {
        let Some(text) = self.text.as_deref().filter(|_| self.in_rust) else {
            return rows;
        };
        let needle = text.to_lowercase();
        rows.into_iter()
            .filter(|row| {
                fields(row)
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
            })
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect()
    }
}

/// `%text%` for a case-insensitive LIKE, with LIKE's own wildcards escaped.
pub(crate) fn contains_pattern(search: Option<&str>) -> Option<String> {
    let text = search.map(str::trim).filter(|s| !s.is_empty())?;
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Some(pattern)
}

/// `text%`, escaped as [`contains_pattern`] does.
pub(crate) fn prefix_pattern(prefix: Option<&str>) -> Option<String> {
    contains_pattern(prefix).and_then(|p| p.strip_prefix('%').map(str::to_owned))
}
