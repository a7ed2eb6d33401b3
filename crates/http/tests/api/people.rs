//! People's own accounts, over HTTP with real mail: sign-up confirmed by the emailed link,
//! sign-in before confirming, password reset by email, login throttling, the first admin's
//! setup link, and the CSRF protection of every one of these forms.

use crate::helpers::{
    browser, csrf_of, hidden_fields, location, log_in, on_both_backends, page, page_ok, post_form,
    sign_in, signed_in, spawn_app, spawn_app_with_mail, spawn_app_with_mail_and, stored_user,
    text_of_id, TestApp, PASSWORD, T0,
};
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::user::Role;
use gatehouse_service::apps::NewApp;
use gatehouse_service::people::Registration;
use gatehouse_service::testing::{first_link, SmtpSink};
use gatehouse_service::ServiceError;
use gatehouse_store::testing::Backend;
use gatehouse_store::ListQuery;
use reqwest::Client;

on_both_backends!(
    registration_is_confirmed_by_the_emailed_link_and_sign_in_lands_on_the_portal,
    sign_in_before_confirming_is_refused_and_the_link_can_be_sent_again,
    registering_a_taken_email_looks_the_same_and_mails_the_owner_instead,
    a_weak_password_is_refused_next_to_its_field_and_nothing_is_stored,
    a_malformed_email_is_refused_next_to_its_field_and_nothing_is_stored,
    a_used_or_tampered_verification_link_does_not_work,
    signing_up_again_replaces_an_unconfirmed_registration_and_its_password,
    a_link_mailed_to_an_earlier_registration_does_not_confirm_a_later_one,
    a_password_reset_by_email_changes_the_password_and_signs_out_every_session,
    a_reset_link_with_a_weak_password_is_refused_and_keeps_working,
    an_unknown_email_gets_the_same_reset_page_and_no_mail,
    no_more_than_three_reset_mails_are_sent_within_fifteen_minutes,
    sign_in_is_throttled_after_five_wrong_passwords,
    parallel_wrong_passwords_do_not_slip_past_the_throttle,
    a_password_reset_lifts_the_sign_in_lock,
    already_registered_mails_share_the_per_address_mail_limit,
    a_self_registered_account_holds_exactly_the_signup_scopes,
    an_unknown_and_an_unconfirmed_address_get_the_same_sign_in_failure,
    the_setup_link_creates_the_first_admin_once,
    a_bad_or_replaced_setup_token_is_refused,
    the_setup_link_expires_after_an_hour,
    register_without_a_valid_csrf_token_is_forbidden_and_stores_nothing,
    resend_verification_without_a_valid_csrf_token_is_forbidden_and_sends_nothing,
    forgot_password_without_a_valid_csrf_token_is_forbidden_and_sends_nothing,
    reset_password_without_a_valid_csrf_token_is_forbidden_and_keeps_the_password,
    setup_without_a_valid_csrf_token_is_forbidden_and_creates_no_admin,
);

const EMAIL: &str = "dana@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase";
const CHECK_YOUR_EMAIL: &str = "Check your email";
const LINK_REFUSED: &str = "This link does not work";

// ---------------------------------------------------------------------------------------------
// What the tests have in common

/// Fills in the sign-up form with `browser`; the answer.
async fn register(
    app: &TestApp,
    browser: &Client,
    email: &str,
    password: &str,
    organisation: &str,
) -> reqwest::Response {
    let form = page_ok(app, browser, "/register").await;
    let csrf = csrf_of(&form);
    post_form(
        app,
        browser,
        "/register",
        &[
            ("csrf_token", csrf.as_str()),
            ("email", email),
            ("password", password),
            ("organisation", organisation),
        ],
    )
    .await
}

/// Signs `email` up through the service (the form is tested on its own) and returns the link
/// of the confirmation mail.
async fn registered(app: &TestApp, sink: &SmtpSink, email: &str) -> String {
    app.gatehouse
        .register(Registration {
            email,
            password: PASSWORD,
            organisation: "",
        })
        .await
        .unwrap();
    verification_link(app, sink, email).await
}

/// Opens a confirmation link in a fresh browser and presses its button.
async fn confirm(app: &TestApp, link: &str) -> reqwest::Response {
    let b = browser();
    let res = b.get(link).send().await.unwrap();
    assert_eq!(res.status(), 200, "{link}");
    let fields = hidden_fields(&res.text().await.unwrap());
    b.post(app.url("/verify-email"))
        .form(&[
            ("csrf_token", fields["csrf_token"].as_str()),
            ("token", fields["token"].as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// The link of the next confirmation mail to `email`.
async fn verification_link(app: &TestApp, sink: &SmtpSink, email: &str) -> String {
    let mail = sink
        .wait_for_mail(email, "Confirm your email address")
        .await;
    first_link(&mail.body, &app.url("/verify-email?token="))
        .unwrap_or_else(|| panic!("no confirmation link in:\n{}", mail.body))
}

/// The link of the next password reset mail to `email`.
async fn reset_link(app: &TestApp, sink: &SmtpSink, email: &str) -> String {
    let mail = sink.wait_for_mail(email, "Reset your password").await;
    first_link(&mail.body, &app.url("/reset-password?token="))
        .unwrap_or_else(|| panic!("no reset link in:\n{}", mail.body))
}

/// Asks for a password reset of `email` with the form; asserts the neutral answer page.
async fn forgot(app: &TestApp, browser: &Client, email: &str) -> String {
    let form = page_ok(app, browser, "/forgot-password").await;
    let csrf = csrf_of(&form);
    let res = post_form(
        app,
        browser,
        "/forgot-password",
        &[("csrf_token", csrf.as_str()), ("email", email)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains(CHECK_YOUR_EMAIL), "{body}");
    body
}

/// The token of a mailed link.
fn token_of(link: &str) -> String {
    url::Url::parse(link)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .expect("a token in the link")
}

/// The path and query of a mailed link, to open with a browser of this server.
fn path_of(app: &TestApp, link: &str) -> String {
    link.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{link} points at this server"))
        .to_owned()
}

/// Every user stored, as emails.
async fn all_emails(app: &TestApp) -> Vec<String> {
    let mut emails: Vec<String> = app
        .store
        .list_users(&ListQuery {
            search: None,
            status: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email.to_string())
        .collect();
    emails.sort();
    emails
}

async fn account_count(app: &TestApp) -> usize {
    app.store
        .list_accounts(&ListQuery {
            search: None,
            status: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .len()
}

/// How many mails the outbox folder holds (servers without `smtp_url`), once what is being
/// sent has finished.
async fn outbox_count(app: &TestApp) -> usize {
    app.gatehouse.finish_mail().await;
    std::fs::read_dir(app.outbox.path())
        .map(|d| d.count())
        .unwrap_or(0)
}

/// How many mails the sink received for `email` with `subject` in the subject.
fn mails_to(sink: &SmtpSink, email: &str, subject: &str) -> usize {
    sink.all()
        .iter()
        .filter(|m| m.to.contains(email) && m.subject.contains(subject))
        .count()
}

/// The CSRF token of another visitor's session: real, but not this browser's.
async fn someone_elses_csrf(app: &TestApp) -> String {
    csrf_of(&page_ok(app, &browser(), "/login").await)
}

/// Posts `fields` to `path` with `browser` twice, once without a `csrf_token` and once with
/// another session's; both must be refused with 403.
async fn assert_csrf_refused(app: &TestApp, browser: &Client, path: &str, fields: &[(&str, &str)]) {
    let res = post_form(app, browser, path, fields).await;
    assert_eq!(res.status(), 403, "{path} without a CSRF token");
    let body = res.text().await.unwrap();
    assert!(body.contains("This form expired"), "{body}");
    let other = someone_elses_csrf(app).await;
    let mut with_wrong: Vec<(&str, &str)> = fields.to_vec();
    with_wrong.push(("csrf_token", other.as_str()));
    let res = post_form(app, browser, path, &with_wrong).await;
    assert_eq!(
        res.status(),
        403,
        "{path} with another session's CSRF token"
    );
    let mut garbage: Vec<(&str, &str)> = fields.to_vec();
    garbage.push(("csrf_token", "not-a-token"));
    let res = post_form(app, browser, path, &garbage).await;
    assert_eq!(res.status(), 403, "{path} with a made-up CSRF token");
}

// ---------------------------------------------------------------------------------------------
// Sign-up

async fn registration_is_confirmed_by_the_emailed_link_and_sign_in_lands_on_the_portal(
    backend: Backend,
) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let b = browser();
    let res = register(&app, &b, EMAIL, PASSWORD, "Acme Tours").await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains(CHECK_YOUR_EMAIL), "{body}");

    let user = stored_user(&app, EMAIL).await.expect("the user is stored");
    assert_eq!(user.role, Role::Developer);
    assert_eq!(user.email_verified_at, None, "not confirmed yet");
    let account_id = user
        .account_id
        .clone()
        .expect("a registered user gets an account");
    let account = app
        .store
        .find_account(&account_id)
        .await
        .unwrap()
        .expect("the account is stored");
    assert_eq!(account.name.as_str(), "Acme Tours");

    let link = verification_link(&app, &sink, EMAIL).await;
    // Opening the link (as a mail scanner would) confirms nothing by itself.
    let (status, shown) = page(&app, &browser(), &path_of(&app, &link)).await;
    assert_eq!(status, 200);
    assert!(shown.contains("Confirm my email address"), "{shown}");
    assert_eq!(
        stored_user(&app, EMAIL).await.unwrap().email_verified_at,
        None
    );
    // The link is opened from the mail client: no cookies of the sign-up browser.
    let res = confirm(&app, &link).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?done=verified");
    let user = stored_user(&app, EMAIL).await.unwrap();
    assert!(user.email_verified_at.is_some(), "confirmed");

    let login = page_ok(&app, &b, "/login?done=verified").await;
    assert!(login.contains("Your email address is confirmed"), "{login}");
    sign_in(&app, &b, EMAIL).await;
    let portal = page_ok(&app, &b, "/portal").await;
    assert!(portal.contains("My Apps"), "{portal}");
    let keys = page_ok(&app, &b, "/portal/keys").await;
    assert_eq!(
        text_of_id(&keys, "account-id"),
        Some(account_id.as_str()),
        "the keys page shows the new account's AccountId"
    );
    assert!(keys.contains("Acme Tours"), "{keys}");
}

async fn sign_in_before_confirming_is_refused_and_the_link_can_be_sent_again(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let first = registered(&app, &sink, EMAIL).await;
    // The first link lapses unused: confirmation links work for 48 hours.
    app.clock.advance(48 * 3600);
    let b = browser();
    let res = log_in(&app, &b, EMAIL, PASSWORD).await;
    assert_eq!(
        res.status(),
        401,
        "the right password, an unconfirmed address: the same answer as a wrong password"
    );
    let body = res.text().await.unwrap();
    assert!(body.contains("not confirmed yet"), "{body}");
    assert!(body.contains("Send it again"), "{body}");
    let wrong = log_in(&app, &browser(), "nobody@example.com", PASSWORD).await;
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    assert!(wrong.contains("not confirmed yet") && wrong.contains("Send it again"));
    assert!(body.contains("action=\"/resend-verification\""), "{body}");
    // No session was started.
    let (status, _) = page(&app, &b, "/portal").await;
    assert_eq!(status, 303);

    let fields = hidden_fields(&body);
    assert_eq!(fields.get("email").map(String::as_str), Some(EMAIL));
    let res = post_form(
        &app,
        &b,
        "/resend-verification",
        &[("csrf_token", &fields["csrf_token"]), ("email", EMAIL)],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(CHECK_YOUR_EMAIL));
    let second = verification_link(&app, &sink, EMAIL).await;
    assert_ne!(first, second, "a new link");

    let (status, body) = page(&app, &app.http, &path_of(&app, &first)).await;
    assert_eq!(status, 400, "the first link expired");
    assert!(body.contains(LINK_REFUSED), "{body}");
    assert_eq!(
        stored_user(&app, EMAIL).await.unwrap().email_verified_at,
        None
    );
    let res = confirm(&app, &second).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?done=verified");
    sign_in(&app, &b, EMAIL).await;
    assert!(page_ok(&app, &b, "/portal").await.contains("My Apps"));
}

async fn registering_a_taken_email_looks_the_same_and_mails_the_owner_instead(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let existing = app.user(EMAIL).await;
    let accounts = account_count(&app).await;
    let res = register(&app, &browser(), "Dana@Example.com", "another password", "").await;
    assert_eq!(res.status(), 200, "the same answer as for a new address");
    let body = res.text().await.unwrap();
    assert!(body.contains(CHECK_YOUR_EMAIL), "{body}");

    let mail = sink
        .wait_for_mail(EMAIL, "You already have an account")
        .await;
    assert!(
        mail.body.contains(&app.url("/forgot-password")),
        "{}",
        mail.body
    );
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, EMAIL, "Confirm"), 0, "no confirmation link");
    assert_eq!(
        all_emails(&app).await,
        vec![EMAIL.to_owned()],
        "no second user"
    );
    assert_eq!(account_count(&app).await, accounts, "no new account");
    let stored = stored_user(&app, EMAIL).await.unwrap();
    assert_eq!(stored.user_id, existing.user_id);
    assert_eq!(
        stored.password_hash.as_phc(),
        existing.password_hash.as_phc(),
        "the password is unchanged"
    );
}

async fn already_registered_mails_share_the_per_address_mail_limit(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(EMAIL).await;
    let b = browser();
    const REGISTERED: &str = "You already have an account";
    for attempt in 1..=5 {
        let res = register(&app, &b, EMAIL, "another password", "").await;
        assert_eq!(res.status(), 200, "attempt {attempt}");
        assert!(res.text().await.unwrap().contains(CHECK_YOUR_EMAIL));
        app.clock.advance(10);
    }
    app.gatehouse.finish_mail().await;
    assert_eq!(
        mails_to(&sink, EMAIL, REGISTERED),
        3,
        "five sign-ups within a minute mail the owner three times"
    );
    // The limit is the one confirmation and reset mails count against.
    forgot(&app, &b, EMAIL).await;
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, EMAIL, "Reset your password"), 0);

    // Once the first mail has left the 15-minute window, one more is allowed.
    app.clock.advance(15 * 60);
    let res = register(&app, &b, EMAIL, "another password", "").await;
    assert_eq!(res.status(), 200);
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, EMAIL, REGISTERED), 4);
    assert_eq!(all_emails(&app).await, vec![EMAIL.to_owned()]);
}

/// Signs `EMAIL` up with the form, confirms it and signs in; the scopes stored for the new
/// account and the keys page.
async fn sign_up_and_open_the_keys_page(app: &TestApp, sink: &SmtpSink) -> (ScopeSet, String) {
    let b = browser();
    let res = register(app, &b, EMAIL, PASSWORD, "Acme Tours").await;
    assert_eq!(res.status(), 200);
    let link = verification_link(app, sink, EMAIL).await;
    assert_eq!(confirm(app, &link).await.status(), 303);
    sign_in(app, &b, EMAIL).await;
    let account_id = stored_user(app, EMAIL)
        .await
        .unwrap()
        .account_id
        .expect("a registered user gets an account");
    let account = app
        .store
        .find_account(&account_id)
        .await
        .unwrap()
        .expect("stored");
    let keys = page_ok(app, &b, "/portal/keys").await;
    assert_eq!(text_of_id(&keys, "account-id"), Some(account_id.as_str()));
    (account.scopes, keys)
}

async fn a_self_registered_account_holds_exactly_the_signup_scopes(backend: Backend) {
    // By default a new account may do nothing until an admin grants scopes.
    let (app, sink) = spawn_app_with_mail(backend).await;
    let (scopes, keys) = sign_up_and_open_the_keys_page(&app, &sink).await;
    assert!(scopes.is_empty(), "no scopes: {scopes}");
    assert!(
        keys.contains("<dt>Scopes</dt><dd>None yet: an administrator grants them</dd>"),
        "{keys}"
    );
    drop(app);

    let (app, sink) = spawn_app_with_mail_and(backend, |s| {
        s.signup_scopes = s.scopes.exactly(["read"]).unwrap();
    })
    .await;
    let (scopes, keys) = sign_up_and_open_the_keys_page(&app, &sink).await;
    assert_eq!(scopes.to_string(), "read", "exactly the signup scopes");
    assert!(keys.contains("<dt>Scopes</dt><dd>read</dd>"), "{keys}");
}

async fn a_weak_password_is_refused_next_to_its_field_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = register(&app, &browser(), EMAIL, "short", "Acme").await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    let error = text_of_id(&body, "password-error").expect("an error next to the password");
    assert!(error.contains("at least 8 characters"), "{error}");
    assert!(
        body.contains("class=\"field-error\" id=\"password-error\""),
        "{body}"
    );
    assert!(
        body.contains(&format!("value=\"{EMAIL}\"")),
        "the email is kept"
    );
    assert_eq!(text_of_id(&body, "email-error"), None);
    assert!(all_emails(&app).await.is_empty(), "no user");
    assert_eq!(account_count(&app).await, 0, "no account");
    assert_eq!(outbox_count(&app).await, 0, "no mail");
}

async fn a_malformed_email_is_refused_next_to_its_field_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = register(&app, &browser(), "dana.example.com", PASSWORD, "").await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    let error = text_of_id(&body, "email-error").expect("an error next to the email");
    assert!(error.contains("not a valid email address"), "{error}");
    assert!(
        body.contains("class=\"field-error\" id=\"email-error\""),
        "{body}"
    );
    assert_eq!(text_of_id(&body, "password-error"), None);
    assert!(all_emails(&app).await.is_empty(), "no user");
    assert_eq!(account_count(&app).await, 0, "no account");
    assert_eq!(outbox_count(&app).await, 0, "no mail");
}

async fn a_used_or_tampered_verification_link_does_not_work(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let link = registered(&app, &sink, EMAIL).await;
    let token = token_of(&link);

    // A changed character breaks the checksum; a well-formed stranger is unknown.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        format!("/verify-email?token={tampered}"),
        format!("/verify-email?token={}", &token[..token.len() - 4]),
        "/verify-email?token=nonsense".to_owned(),
        "/verify-email".to_owned(),
    ] {
        let (status, body) = page(&app, &app.http, &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body.contains(LINK_REFUSED), "{bad}: {body}");
    }
    assert_eq!(
        stored_user(&app, EMAIL).await.unwrap().email_verified_at,
        None,
        "still not confirmed"
    );

    let res = confirm(&app, &link).await;
    assert_eq!(res.status(), 303, "the real link works");
    let confirmed = stored_user(&app, EMAIL).await.unwrap().email_verified_at;
    assert!(confirmed.is_some());

    app.clock.advance(60);
    let (status, body) = page(&app, &app.http, &path_of(&app, &link)).await;
    assert_eq!(status, 400, "used already");
    assert!(body.contains(LINK_REFUSED), "{body}");
    assert_eq!(
        stored_user(&app, EMAIL).await.unwrap().email_verified_at,
        confirmed,
        "unchanged"
    );
}

/// Account pre-hijacking: an attacker signs a victim's address up first, with a password of
/// their own. When the victim signs up, the attacker's registration (password, link,
/// account) is gone, and the victim's own link confirms the victim's.
async fn signing_up_again_replaces_an_unconfirmed_registration_and_its_password(backend: Backend) {
    const ATTACKER_PASSWORD: &str = "the attacker's own password";
    let (app, sink) = spawn_app_with_mail(backend).await;
    let res = register(&app, &browser(), EMAIL, ATTACKER_PASSWORD, "Evil Corp").await;
    assert_eq!(res.status(), 200);
    let attackers_link = verification_link(&app, &sink, EMAIL).await;
    let attacker = stored_user(&app, EMAIL).await.unwrap();
    // Nothing can be made in the name of an unconfirmed address, not even by an operator.
    let refused = app
        .gatehouse
        .create_app(
            "test",
            NewApp {
                owner_email: EMAIL,
                name: "Fleet Dashboard",
                redirect_uris: &["https://fleet.example.com/cb".to_owned()],
                scopes: &[],
                public: false,
            },
        )
        .await;
    assert!(
        matches!(refused, Err(ServiceError::NotApplicable(_))),
        "{refused:?}"
    );

    let res = register(&app, &browser(), EMAIL, PASSWORD, "Acme Tours").await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(CHECK_YOUR_EMAIL));
    let victims_link = verification_link(&app, &sink, EMAIL).await;
    app.gatehouse.finish_mail().await;
    assert_eq!(
        mails_to(&sink, EMAIL, "You already have an account"),
        0,
        "an unconfirmed address is not 'already registered'"
    );
    let victim = stored_user(&app, EMAIL).await.unwrap();
    assert_ne!(victim.user_id, attacker.user_id, "a new registration");
    assert_eq!(all_emails(&app).await, vec![EMAIL.to_owned()]);
    assert_eq!(
        account_count(&app).await,
        1,
        "the attacker's account is gone"
    );
    let account = app
        .store
        .find_account(victim.account_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.name.as_str(), "Acme Tours");

    // The link of the attacker's registration no longer works.
    let (status, body) = page(&app, &app.http, &path_of(&app, &attackers_link)).await;
    assert_eq!(status, 400);
    assert!(body.contains(LINK_REFUSED), "{body}");

    let res = confirm(&app, &victims_link).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?done=verified");
    let res = log_in(&app, &browser(), EMAIL, ATTACKER_PASSWORD).await;
    assert_eq!(
        res.status(),
        401,
        "the attacker's password died with its registration"
    );
    let b = browser();
    sign_in(&app, &b, EMAIL).await;
    assert!(page_ok(&app, &b, "/portal").await.contains("My Apps"));
}

/// The reverse order: a victim's pending registration is replaced by someone else's; the
/// link mailed for the victim's registration must not confirm the newer one (whose password
/// the victim does not know).
async fn a_link_mailed_to_an_earlier_registration_does_not_confirm_a_later_one(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let first_link = registered(&app, &sink, EMAIL).await;
    let res = register(&app, &browser(), EMAIL, "someone else's password", "").await;
    assert_eq!(res.status(), 200);
    let second_link = verification_link(&app, &sink, EMAIL).await;
    assert_ne!(first_link, second_link);

    let (status, body) = page(&app, &app.http, &path_of(&app, &first_link)).await;
    assert_eq!(status, 400, "the earlier registration's link");
    assert!(body.contains(LINK_REFUSED), "{body}");
    let res = confirm_token(&app, &token_of(&first_link)).await;
    assert_eq!(
        res.status(),
        400,
        "posting the earlier link confirms nothing either"
    );
    assert_eq!(
        stored_user(&app, EMAIL).await.unwrap().email_verified_at,
        None,
        "the later registration is still unconfirmed"
    );
    // Its own link confirms the later registration.
    let res = confirm(&app, &second_link).await;
    assert_eq!(res.status(), 303);
    assert!(stored_user(&app, EMAIL)
        .await
        .unwrap()
        .email_verified_at
        .is_some());
}

/// Posts the confirmation form with `token` from a fresh browser (its CSRF token from the
/// login page), without opening the link first.
async fn confirm_token(app: &TestApp, token: &str) -> reqwest::Response {
    let b = browser();
    let csrf = csrf_of(&page_ok(app, &b, "/login").await);
    b.post(app.url("/verify-email"))
        .form(&[("csrf_token", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Password reset

async fn a_password_reset_by_email_changes_the_password_and_signs_out_every_session(
    backend: Backend,
) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let other_device = signed_in(&app, EMAIL).await;
    assert_eq!(page(&app, &other_device, "/portal").await.0, 200);

    let b = browser();
    forgot(&app, &b, EMAIL).await;
    let link = reset_link(&app, &sink, EMAIL).await;
    let form = page_ok(&app, &b, &path_of(&app, &link)).await;
    assert!(form.contains("Choose a new password"), "{form}");
    let fields = hidden_fields(&form);
    assert_eq!(fields.get("token"), Some(&token_of(&link)));
    let res = post_form(
        &app,
        &b,
        "/reset-password",
        &[
            ("csrf_token", &fields["csrf_token"]),
            ("token", &fields["token"]),
            ("password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?done=reset");
    let notice = page_ok(&app, &b, "/login?done=reset").await;
    assert!(notice.contains("Your password was changed"), "{notice}");

    // The other device was signed out.
    let res = other_device.get(app.url("/portal")).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed out everywhere");
    assert_eq!(location(&res), "/login?return_to=%2Fportal");

    let mail = sink.wait_for_mail(EMAIL, "Your password was changed").await;
    assert!(mail.body.contains("signed out"), "{}", mail.body);

    let res = log_in(&app, &browser(), EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 401, "the old password no longer works");
    let res = log_in(&app, &browser(), EMAIL, NEW_PASSWORD).await;
    assert_eq!(res.status(), 303, "the new one does");

    // The link works once.
    let hash = stored_user(&app, EMAIL).await.unwrap().password_hash;
    let (status, body) = page(&app, &b, &path_of(&app, &link)).await;
    assert_eq!(status, 400);
    assert!(body.contains(LINK_REFUSED), "{body}");
    let csrf = csrf_of(&page_ok(&app, &b, "/forgot-password").await);
    let res = post_form(
        &app,
        &b,
        "/reset-password",
        &[
            ("csrf_token", &csrf),
            ("token", &fields["token"]),
            ("password", "yet another passphrase"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400, "a used link");
    assert!(res.text().await.unwrap().contains(LINK_REFUSED));
    assert_eq!(
        stored_user(&app, EMAIL)
            .await
            .unwrap()
            .password_hash
            .as_phc(),
        hash.as_phc(),
        "the password is unchanged"
    );
}

async fn a_reset_link_with_a_weak_password_is_refused_and_keeps_working(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let before = app.user(EMAIL).await;
    let b = browser();
    forgot(&app, &b, EMAIL).await;
    let link = reset_link(&app, &sink, EMAIL).await;
    let form = page_ok(&app, &b, &path_of(&app, &link)).await;
    let fields = hidden_fields(&form);
    let res = post_form(
        &app,
        &b,
        "/reset-password",
        &[
            ("csrf_token", &fields["csrf_token"]),
            ("token", &fields["token"]),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("at least 8 characters"), "{body}");
    assert_eq!(
        hidden_fields(&body).get("token"),
        Some(&fields["token"]),
        "the form keeps the link's token"
    );
    assert_eq!(
        stored_user(&app, EMAIL)
            .await
            .unwrap()
            .password_hash
            .as_phc(),
        before.password_hash.as_phc()
    );
    assert_eq!(
        page(&app, &b, &path_of(&app, &link)).await.0,
        200,
        "still usable"
    );
    // Reset links work for an hour.
    app.clock.advance(3600);
    let (status, body) = page(&app, &browser(), &path_of(&app, &link)).await;
    assert_eq!(status, 400, "expired");
    assert!(body.contains(LINK_REFUSED), "{body}");
}

async fn an_unknown_email_gets_the_same_reset_page_and_no_mail(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(EMAIL).await;
    let b = browser();
    let unknown = forgot(&app, &b, "nobody@example.com").await;
    let malformed = forgot(&app, &b, "not an address").await;
    let known = forgot(&app, &b, EMAIL).await;
    assert_eq!(unknown, known, "the same page either way");
    assert_eq!(malformed, known);
    // The known address's mail arrives; by then the unknown one would have, too.
    reset_link(&app, &sink, EMAIL).await;
    app.gatehouse.finish_mail().await;
    let all = sink.all();
    assert_eq!(all.len(), 1, "one mail only: {all:?}");
}

async fn no_more_than_three_reset_mails_are_sent_within_fifteen_minutes(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(EMAIL).await;
    let b = browser();
    // Each mail is awaited before the next request: the work runs after answering, and
    // requests in quick succession may reach the per-address turn in either order, which
    // would change which three are counted and so when the window frees up.
    for _ in 0..3 {
        forgot(&app, &b, EMAIL).await;
        reset_link(&app, &sink, EMAIL).await;
        app.clock.advance(60);
    }
    forgot(&app, &b, EMAIL).await;
    app.clock.advance(60);
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, EMAIL, "Reset your password"), 3);

    // The first mail (at 0 s) counts until 15 minutes have passed, and not a second longer.
    app.clock.advance(15 * 60 - 4 * 60 - 1);
    forgot(&app, &b, EMAIL).await;
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, EMAIL, "Reset your password"), 3);
    app.clock.advance(1);
    forgot(&app, &b, EMAIL).await;
    reset_link(&app, &sink, EMAIL).await;
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, EMAIL, "Reset your password"), 4);
}

// ---------------------------------------------------------------------------------------------
// Login throttling

async fn sign_in_is_throttled_after_five_wrong_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let b = browser();
    for attempt in 1..=5 {
        let res = log_in(&app, &b, EMAIL, "not the password").await;
        assert_eq!(res.status(), 401, "wrong password {attempt}");
    }
    let res = log_in(&app, &b, EMAIL, PASSWORD).await;
    assert_eq!(
        res.status(),
        429,
        "the sixth attempt waits, even with the right password"
    );
    let retry_after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(retry_after, "900", "15 minutes after the first failure");
    let body = res.text().await.unwrap();
    assert!(body.contains("Too many failed sign-ins"), "{body}");
    assert!(body.contains("Try again in 15 minutes"), "{body}");
    assert_eq!(page(&app, &b, "/portal").await.0, 303, "no session");

    // Another address is not affected.
    app.user("other@example.com").await;
    assert_eq!(
        log_in(&app, &browser(), "other@example.com", PASSWORD)
            .await
            .status(),
        303
    );

    app.clock.advance(14 * 60);
    let res = log_in(&app, &b, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert_eq!(
        res.headers()[reqwest::header::RETRY_AFTER]
            .to_str()
            .unwrap(),
        "60"
    );
    app.clock.advance(60);
    let res = log_in(&app, &b, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 303, "15 minutes later it works again");
    assert_eq!(location(&res), "/portal");
}

async fn parallel_wrong_passwords_do_not_slip_past_the_throttle(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    // Each guess comes from its own browser with its own form token.
    let mut browsers = Vec::new();
    for _ in 0..20 {
        let b = browser();
        let csrf = csrf_of(&page_ok(&app, &b, "/login").await);
        browsers.push((b, csrf));
    }
    let guesses: Vec<_> = browsers
        .into_iter()
        .enumerate()
        .map(|(i, (b, csrf))| {
            let url = app.url("/login");
            tokio::spawn(async move {
                let wrong = format!("wrong password {i}");
                b.post(url)
                    .form(&[
                        ("csrf_token", csrf.as_str()),
                        ("email", EMAIL),
                        ("password", wrong.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut refused, mut waiting) = (0usize, 0usize);
    for guess in guesses {
        let res = guess.await.unwrap();
        match res.status().as_u16() {
            401 => refused += 1,
            429 => {
                let retry_after: i64 = res.headers()[reqwest::header::RETRY_AFTER]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=900).contains(&retry_after), "{retry_after}");
                waiting += 1;
            }
            other => panic!("a guess got {other}"),
        }
    }
    assert!(
        (1..=5).contains(&refused),
        "{refused} passwords were checked"
    );
    assert_eq!(refused + waiting, 20);
    let failures = app
        .store
        .recent_event_times("login.failed", EMAIL, T0.plus_secs(-60), 100)
        .await
        .unwrap();
    assert_eq!(failures.len(), refused, "every checked guess was recorded");

    let res = log_in(&app, &browser(), EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 429, "the right password waits too");
    assert!(res.headers().contains_key(reqwest::header::RETRY_AFTER));
}

async fn a_password_reset_lifts_the_sign_in_lock(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(EMAIL).await;
    for attempt in 1..=5 {
        let res = log_in(&app, &browser(), EMAIL, "not the password").await;
        assert_eq!(res.status(), 401, "wrong password {attempt}");
    }
    assert_eq!(
        log_in(&app, &browser(), EMAIL, PASSWORD).await.status(),
        429,
        "locked"
    );

    let b = browser();
    forgot(&app, &b, EMAIL).await;
    let link = reset_link(&app, &sink, EMAIL).await;
    let fields = hidden_fields(&page_ok(&app, &b, &path_of(&app, &link)).await);
    let res = post_form(
        &app,
        &b,
        "/reset-password",
        &[
            ("csrf_token", &fields["csrf_token"]),
            ("token", &fields["token"]),
            ("password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);

    // No time has passed: the new password works at once.
    let res = log_in(&app, &browser(), EMAIL, NEW_PASSWORD).await;
    assert_eq!(res.status(), 303, "the reset lifted the lock");
    assert_eq!(location(&res), "/portal");

    // Later guesses count again.
    app.clock.advance(1);
    for attempt in 1..=5 {
        let res = log_in(&app, &browser(), EMAIL, "not the password").await;
        assert_eq!(
            res.status(),
            401,
            "wrong password {attempt} after the reset"
        );
    }
    assert_eq!(
        log_in(&app, &browser(), EMAIL, NEW_PASSWORD).await.status(),
        429,
        "locked again"
    );
}

async fn an_unknown_and_an_unconfirmed_address_get_the_same_sign_in_failure(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    registered(&app, &sink, EMAIL).await;
    app.user("known@example.com").await;
    const SHOWN: &str = "someone@example.com";
    // One browser, so the form token on the pages is the same.
    let b = browser();
    let mut pages = Vec::new();
    for (email, password) in [
        (EMAIL, PASSWORD),
        ("nobody@example.com", PASSWORD),
        ("known@example.com", "not the password"),
    ] {
        let res = log_in(&app, &b, email, password).await;
        assert_eq!(res.status(), 401, "{email}");
        let body = res.text().await.unwrap();
        assert!(
            body.contains(
                "The email or password is not right, or the email address is not confirmed yet."
            ),
            "{email}: {body}"
        );
        assert!(body.contains("Send it again"), "{email}: {body}");
        assert_eq!(
            hidden_fields(&body).get("email").map(String::as_str),
            Some(email)
        );
        pages.push(body.replace(email, SHOWN));
    }
    assert_eq!(pages[0], pages[1], "unconfirmed and unknown look the same");
    assert_eq!(pages[0], pages[2], "and so does a wrong password");
}

// ---------------------------------------------------------------------------------------------
// The first admin

async fn the_setup_link_creates_the_first_admin_once(backend: Backend) {
    let app = spawn_app(backend).await;
    // Developers do not count as admins.
    app.user(EMAIL).await;
    let token = app
        .gatehouse
        .setup_link()
        .await
        .unwrap()
        .expect("a setup link while there is no admin")
        .expose()
        .to_owned();
    let b = browser();
    let form = page_ok(&app, &b, &format!("/setup?token={token}")).await;
    assert!(form.contains("Create the first admin"), "{form}");
    assert!(form.contains("name=\"email\""), "{form}");
    let csrf = csrf_of(&form);
    assert_eq!(hidden_fields(&form).get("token"), Some(&token));
    let res = post_form(
        &app,
        &b,
        "/setup",
        &[
            ("csrf_token", &csrf),
            ("token", &token),
            ("email", "root@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?done=setup");
    let admin = stored_user(&app, "root@example.com").await.expect("stored");
    assert_eq!(admin.role, Role::Admin);
    assert!(admin.email_verified_at.is_some());

    // Once only.
    let (status, body) = page(&app, &b, &format!("/setup?token={token}")).await;
    assert_eq!(status, 400);
    assert!(body.contains(LINK_REFUSED), "{body}");
    let res = post_form(
        &app,
        &b,
        "/setup",
        &[
            ("csrf_token", &csrf),
            ("token", &token),
            ("email", "second@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(stored_user(&app, "second@example.com").await.is_none());
    assert!(
        app.gatehouse.setup_link().await.unwrap().is_none(),
        "no setup link once there is an admin"
    );

    let notice = page_ok(&app, &b, "/login?done=setup").await;
    assert!(notice.contains("The admin account is ready"), "{notice}");
    sign_in(&app, &b, "root@example.com").await;
    assert!(page_ok(&app, &b, "/admin").await.contains("Review queue"));
}

/// The setup link makes whoever holds it the first admin: it works for an hour only.
async fn the_setup_link_expires_after_an_hour(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.gatehouse.setup_link().await.unwrap().unwrap();
    let url = format!("/setup?token={}", token.expose());
    let b = browser();
    app.clock.advance(3599);
    let form = page_ok(&app, &b, &url).await;
    let csrf = csrf_of(&form);
    app.clock.advance(1);
    let (status, body) = page(&app, &b, &url).await;
    assert_eq!(status, 400);
    assert!(body.contains(LINK_REFUSED), "{body}");
    let res = post_form(
        &app,
        &b,
        "/setup",
        &[
            ("csrf_token", &csrf),
            ("token", token.expose()),
            ("email", "root@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(!app.store.has_admin().await.unwrap());
}

async fn a_bad_or_replaced_setup_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let old = app.gatehouse.setup_link().await.unwrap().unwrap();
    let token = app.gatehouse.setup_link().await.unwrap().unwrap();
    let b = browser();
    for bad in [
        format!("/setup?token={}", old.expose()),
        "/setup?token=nonsense".to_owned(),
        "/setup".to_owned(),
        format!("/setup?token={}x", token.expose()),
    ] {
        let (status, body) = page(&app, &b, &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body.contains(LINK_REFUSED), "{bad}: {body}");
    }
    // The POST checks the token too.
    let form = page_ok(&app, &b, &format!("/setup?token={}", token.expose())).await;
    let csrf = csrf_of(&form);
    for bad in [old.expose(), "nonsense", ""] {
        let res = post_form(
            &app,
            &b,
            "/setup",
            &[
                ("csrf_token", &csrf),
                ("token", bad),
                ("email", "root@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(res.status(), 400, "token {bad:?}");
    }
    assert!(stored_user(&app, "root@example.com").await.is_none());
    assert!(!app.store.has_admin().await.unwrap());
    // A weak password is refused on the page, and the link still works afterwards.
    let res = post_form(
        &app,
        &b,
        "/setup",
        &[
            ("csrf_token", &csrf),
            ("token", token.expose()),
            ("email", "root@example.com"),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("at least 8 characters"), "{body}");
    assert!(
        body.contains("value=\"root@example.com\""),
        "the email is kept"
    );
    assert!(!app.store.has_admin().await.unwrap());
    assert_eq!(
        page(&app, &b, &format!("/setup?token={}", token.expose()))
            .await
            .0,
        200
    );
    // So is the address of an existing user, and the link is not spent by trying.
    let developer = app.user(EMAIL).await;
    let res = post_form(
        &app,
        &b,
        "/setup",
        &[
            ("csrf_token", &csrf),
            ("token", token.expose()),
            ("email", EMAIL),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("already exists"), "{body}");
    assert!(!app.store.has_admin().await.unwrap());
    assert_eq!(
        stored_user(&app, EMAIL).await.unwrap().role,
        developer.role,
        "the developer stays a developer"
    );
    let res = post_form(
        &app,
        &b,
        "/setup",
        &[
            ("csrf_token", &csrf),
            ("token", token.expose()),
            ("email", "root@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 303, "the link still works");
    assert!(app.store.has_admin().await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// CSRF

async fn register_without_a_valid_csrf_token_is_forbidden_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = browser();
    page_ok(&app, &b, "/register").await;
    assert_csrf_refused(
        &app,
        &b,
        "/register",
        &[
            ("email", EMAIL),
            ("password", PASSWORD),
            ("organisation", ""),
        ],
    )
    .await;
    // A browser that never loaded the form has no session at all.
    let res = post_form(
        &app,
        &browser(),
        "/register",
        &[("email", EMAIL), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(all_emails(&app).await.is_empty(), "no user");
    assert_eq!(account_count(&app).await, 0, "no account");
    assert_eq!(outbox_count(&app).await, 0, "no mail");
}

async fn resend_verification_without_a_valid_csrf_token_is_forbidden_and_sends_nothing(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.gatehouse
        .register(Registration {
            email: EMAIL,
            password: PASSWORD,
            organisation: "",
        })
        .await
        .unwrap();
    assert_eq!(outbox_count(&app).await, 1, "the first confirmation mail");
    let b = browser();
    page_ok(&app, &b, "/login").await;
    assert_csrf_refused(&app, &b, "/resend-verification", &[("email", EMAIL)]).await;
    assert_eq!(outbox_count(&app).await, 1, "no second mail");
}

async fn forgot_password_without_a_valid_csrf_token_is_forbidden_and_sends_nothing(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let b = browser();
    page_ok(&app, &b, "/forgot-password").await;
    assert_csrf_refused(&app, &b, "/forgot-password", &[("email", EMAIL)]).await;
    assert_eq!(outbox_count(&app).await, 0, "no mail");
    // The form itself works.
    forgot(&app, &b, EMAIL).await;
    assert_eq!(outbox_count(&app).await, 1);
}

async fn reset_password_without_a_valid_csrf_token_is_forbidden_and_keeps_the_password(
    backend: Backend,
) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let before = app.user(EMAIL).await;
    let b = browser();
    forgot(&app, &b, EMAIL).await;
    let link = reset_link(&app, &sink, EMAIL).await;
    page_ok(&app, &b, &path_of(&app, &link)).await;
    let token = token_of(&link);
    assert_csrf_refused(
        &app,
        &b,
        "/reset-password",
        &[("token", &token), ("password", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(
        stored_user(&app, EMAIL)
            .await
            .unwrap()
            .password_hash
            .as_phc(),
        before.password_hash.as_phc(),
        "the password is unchanged"
    );
    assert_eq!(
        page(&app, &b, &path_of(&app, &link)).await.0,
        200,
        "the link was not spent"
    );
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, EMAIL, "password was changed"), 0);
}

async fn setup_without_a_valid_csrf_token_is_forbidden_and_creates_no_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.gatehouse.setup_link().await.unwrap().unwrap();
    let b = browser();
    page_ok(&app, &b, &format!("/setup?token={}", token.expose())).await;
    assert_csrf_refused(
        &app,
        &b,
        "/setup",
        &[
            ("token", token.expose()),
            ("email", "root@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert!(!app.store.has_admin().await.unwrap(), "no admin");
    assert!(stored_user(&app, "root@example.com").await.is_none());
    assert_eq!(
        page(&app, &b, &format!("/setup?token={}", token.expose()))
            .await
            .0,
        200,
        "the link still works"
    );
}
