//! Mail through a real SMTP server (aiosmtpd, see `gatehouse_service::testing`) and into the
//! outbox folder.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use gatehouse_core::user::Email;
use gatehouse_service::mail::{Mail, MailError, Mailer, RetryPolicy};
use gatehouse_service::metrics::{Metrics, Snapshot};
use gatehouse_service::testing::{first_link, SmtpSink};
use gatehouse_service::Settings;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

const LINK_PREFIX: &str = "https://gh.example.com/portal/confirm?token=";
/// How long a failing send may take before the test calls it a hang: well above the mailer's
/// own bound (`SEND_TIMEOUT`), for a busy machine.
const GIVE_UP_LIMIT: Duration = Duration::from_secs(30);

fn smtp_settings(url: &str) -> Settings {
    Settings {
        smtp_url: Some(Url::parse(url).unwrap()),
        mail_from: Some("Gatehouse Tests <noreply@gatehouse.test>".parse().unwrap()),
        ..Settings::default()
    }
}

/// A body that needs a transfer encoding: non-ASCII text and a line over 78 characters.
fn mail_with_secret_link() -> (Mail, String) {
    let link = format!("{LINK_PREFIX}ghct_us_{}", "a1B2".repeat(20));
    let text = format!(
        "Grüße — your app “Fleet Dashboard” was approved.\n\nConfirm: {link}\n\nThis line is \
         deliberately longer than seventy-eight characters so that the encoder has to wrap it.\n"
    );
    let mail = Mail {
        to: Email::parse("dev@example.com").unwrap(),
        subject: "Fleet Dashboard approved — ça marche".to_owned(),
        text,
    };
    (mail, link)
}

#[tokio::test]
async fn smtp_delivery_round_trips_headers_and_body() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::from_settings(&smtp_settings(&sink.url())).unwrap();
    let (mail, link) = mail_with_secret_link();
    mailer.send(&mail).await.unwrap();

    let got = sink.wait_for_mail("dev@example.com", "approved").await;
    assert_eq!(got.to, "dev@example.com");
    assert_eq!(got.subject, mail.subject);
    match &mailparse::addrparse(&got.from).unwrap()[0] {
        mailparse::MailAddr::Single(from) => {
            assert_eq!(from.display_name.as_deref(), Some("Gatehouse Tests"));
            assert_eq!(from.addr, "noreply@gatehouse.test");
        }
        group => panic!("From is a group: {group:?}"),
    }
    assert_eq!(got.body.trim_end(), mail.text.trim_end());
    assert_eq!(first_link(&got.body, LINK_PREFIX), Some(link));
    assert_eq!(sink.all(), vec![got]);
}

#[tokio::test]
async fn without_smtp_the_mail_lands_in_the_outbox_and_the_log_omits_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let settings = Settings {
        outbox_dir: outbox.clone(),
        ..Settings::default()
    };
    let (mail, link) = mail_with_secret_link();

    let log = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(log.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    Mailer::from_settings(&settings)
        .unwrap()
        .send(&mail)
        .await
        .unwrap();
    drop(guard);

    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let path = &files[0];
    assert_eq!(path.extension().unwrap(), "eml");
    let eml = std::fs::read_to_string(path).unwrap();
    assert!(eml.contains("Subject: "), "{eml}");
    assert!(eml.contains("To: dev@example.com\r\n"), "{eml}");
    assert!(
        eml.contains("From: \"Gatehouse\" <noreply@localhost>\r\n")
            || eml.contains("From: Gatehouse <noreply@localhost>\r\n"),
        "{eml}"
    );
    let parsed = mailparse::parse_mail(eml.as_bytes()).unwrap();
    use mailparse::MailHeaderMap;
    assert_eq!(
        parsed.headers.get_first_value("Subject").as_deref(),
        Some(mail.subject.as_str())
    );
    assert!(parsed.get_body().unwrap().contains(&link));

    let log = log.text();
    assert!(log.contains("dev@example.com"), "{log}");
    assert!(log.contains(&mail.subject), "{log}");
    assert!(log.contains(&path.display().to_string()), "{log}");
    assert!(
        !log.contains("ghct_us_"),
        "the body leaked into the log: {log}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_an_error_not_a_hang() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mailer =
        Mailer::from_settings(&smtp_settings(&format!("smtp://127.0.0.1:{port}"))).unwrap();
    let (mail, _) = mail_with_secret_link();
    let result = tokio::time::timeout(GIVE_UP_LIMIT, mailer.send(&mail))
        .await
        .unwrap_or_else(|_| panic!("send did not give up within {GIVE_UP_LIMIT:?}"));
    match result {
        Err(e @ MailError::Smtp { .. }) => {
            assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}")
        }
        other => panic!("expected an SMTP error, got {other:?}"),
    }
}

#[tokio::test]
async fn credentials_are_never_sent_without_tls() {
    let sink = SmtpSink::start().await;
    // The sink offers no STARTTLS: with credentials in the URL, sending must fail.
    let url = format!("smtp://mailer:s3cret-pw@127.0.0.1:{}", sink.port());
    let mailer = Mailer::from_settings(&smtp_settings(&url)).unwrap();
    let (mail, _) = mail_with_secret_link();
    let err = tokio::time::timeout(GIVE_UP_LIMIT, mailer.send(&mail))
        .await
        .unwrap_or_else(|_| panic!("send did not give up within {GIVE_UP_LIMIT:?}"))
        .unwrap_err();
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    assert!(sink.all().is_empty());
}

#[tokio::test]
async fn implicit_tls_to_a_plain_server_fails_cleanly() {
    // Exercises the TLS stack (rustls with ring) up to the handshake, which must fail, not hang.
    let sink = SmtpSink::start().await;
    let url = format!("smtps://127.0.0.1:{}", sink.port());
    let mailer = Mailer::from_settings(&smtp_settings(&url)).unwrap();
    let (mail, _) = mail_with_secret_link();
    let result = tokio::time::timeout(GIVE_UP_LIMIT, mailer.send(&mail))
        .await
        .unwrap_or_else(|_| panic!("send did not give up within {GIVE_UP_LIMIT:?}"));
    assert!(matches!(result, Err(MailError::Smtp { .. })), "{result:?}");
    assert!(sink.all().is_empty());
}

/// Retries without waiting seconds: the tests wait for the outcome, not for time.
const QUICK_RETRIES: RetryPolicy = RetryPolicy {
    attempts: 3,
    first_delay: Duration::from_millis(5),
};

/// The mail counters of `metrics`: (sent, failed attempts, given up).
fn mail_counts(metrics: &Metrics) -> (u64, u64, u64) {
    let text = metrics.render(Snapshot::default());
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .parse()
            .unwrap()
    };
    (
        value("gatehouse_mail_sent_total"),
        value("gatehouse_mail_failed_attempts_total"),
        value("gatehouse_mail_given_up_total"),
    )
}

#[tokio::test]
async fn an_unreachable_server_is_retried_a_bounded_number_of_times_and_counted() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mailer = Mailer::from_settings(&smtp_settings(&format!("smtp://127.0.0.1:{port}")))
        .unwrap()
        .with_retry(QUICK_RETRIES);
    let metrics = Metrics::new();
    let (mail, _) = mail_with_secret_link();
    let result = tokio::time::timeout(GIVE_UP_LIMIT, mailer.send_with_retries(&mail, &metrics))
        .await
        .unwrap_or_else(|_| panic!("the retries did not end within {GIVE_UP_LIMIT:?}"));
    assert!(matches!(result, Err(MailError::Smtp { .. })), "{result:?}");
    assert_eq!(mail_counts(&metrics), (0, 3, 1));
    // Each further mail costs its own bounded attempts.
    let _ = mailer.send_with_retries(&mail, &metrics).await;
    assert_eq!(mail_counts(&metrics), (0, 6, 2));
}

#[tokio::test]
async fn a_delivered_mail_counts_as_sent_without_retries() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::from_settings(&smtp_settings(&sink.url()))
        .unwrap()
        .with_retry(QUICK_RETRIES);
    let metrics = Metrics::new();
    let (mail, _) = mail_with_secret_link();
    mailer.send_with_retries(&mail, &metrics).await.unwrap();
    sink.wait_for_mail("dev@example.com", "approved").await;
    assert_eq!(sink.all().len(), 1);
    assert_eq!(mail_counts(&metrics), (1, 0, 0));
}

#[tokio::test]
async fn what_another_attempt_cannot_mend_is_not_retried() {
    let sink = SmtpSink::start().await;
    let metrics = Metrics::new();
    // A message that cannot be built.
    let mailer = Mailer::from_settings(&smtp_settings(&sink.url()))
        .unwrap()
        .with_retry(QUICK_RETRIES);
    let (mut mail, _) = mail_with_secret_link();
    mail.subject = "two\nlines".to_owned();
    let result = mailer.send_with_retries(&mail, &metrics).await;
    assert!(
        matches!(result, Err(MailError::Message { .. })),
        "{result:?}"
    );
    assert_eq!(mail_counts(&metrics), (0, 1, 1));
    // Credentials for a server without STARTTLS: never sent, so never worth another try.
    let url = format!("smtp://mailer:s3cret-pw@127.0.0.1:{}", sink.port());
    let mailer = Mailer::from_settings(&smtp_settings(&url))
        .unwrap()
        .with_retry(QUICK_RETRIES);
    let (mail, _) = mail_with_secret_link();
    let err = mailer.send_with_retries(&mail, &metrics).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(mail_counts(&metrics), (0, 2, 2));
    assert!(sink.all().is_empty());
}

#[test]
fn the_default_retries_are_bounded() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.attempts, 4);
    assert_eq!(policy.first_delay, Duration::from_secs(2));
}

/// A log writer the test can read back.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
