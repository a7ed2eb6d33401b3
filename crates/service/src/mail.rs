//! Email: plain-text UTF-8 messages, sent through SMTP when `smtp_url` is configured and
//! otherwise written as `.eml` files to `outbox_dir` (and announced in the log), so a local
//! install still shows them.
//!
//! Bodies carry one-time links, which are secrets: no body is ever logged, and `Mail`'s
//! `Debug` leaves the text out.
//!
//! `smtp_url` forms:
//! - `smtps://[user:password@]host[:port]`: TLS from the first byte (default port 465);
//! - `smtp://[user:password@]host[:port]`: STARTTLS when the server offers it, plain
//!   otherwise (default port 587). With credentials STARTTLS is required, so a password never
//!   crosses the network in the clear. `?tls=required`, `?tls=opportunistic` or `?tls=none`
//!   chooses explicitly.
//!
//! User name and password are percent-decoded. TLS uses rustls with the Mozilla root
//! certificates (`webpki-roots`).

use crate::metrics::Metrics;
use crate::Settings;
use gatehouse_core::user::Email;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::{Host, Url};

/// How long one SMTP delivery (connect, greet, authenticate, send) may take in all.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How a delivery that failed for a reason that may pass (the server unreachable, a timeout,
/// an SMTP 4xx answer, the outbox folder not writable) is tried again: `attempts` in all, the
/// first retry `first_delay` after the failure, each next one twice as long after the one
/// before. What another attempt cannot mend is not retried ([`MailError::is_transient`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least one).
    pub attempts: u32,
    /// The wait before the first retry.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, retried after 2, 4 and 8 s: with [`SEND_TIMEOUT`] a mail is given up
    /// within a minute, so a stopping server does not wait longer for it.
    fn default() -> Self {
        Self {
            attempts: 4,
            first_delay: Duration::from_secs(2),
        }
    }
}

/// One plain-text message to one recipient.
pub struct Mail {
    /// The recipient.
    pub to: Email,
    /// The subject line (one line).
    pub subject: String,
    /// The body, plain text; may hold one-time links, so it is never logged.
    pub text: String,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field(
                "text",
                &format_args!("<{} bytes redacted>", self.text.len()),
            )
            .finish()
    }
}

/// Why a mail was not sent, or why the mail settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `smtp_url` (or another mail setting) cannot be used.
    #[error("smtp_url: {0}")]
    Config(String),
    /// The message itself is malformed (an address or subject lettre refuses).
    #[error("cannot build the mail to {to}: {reason}")]
    Message {
        /// The recipient.
        to: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The SMTP server could not be reached or refused the mail.
    #[error("sending mail through {server} failed: {error}")]
    Smtp {
        /// `host:port` of the server (never with credentials).
        server: String,
        /// What went wrong.
        error: lettre::transport::smtp::Error,
    },
    /// The SMTP exchange took longer than [`SEND_TIMEOUT`].
    #[error("sending mail through {server} timed out after {} s", SEND_TIMEOUT.as_secs())]
    Timeout {
        /// `host:port` of the server.
        server: String,
    },
    /// The message could not be written to the outbox folder.
    #[error("cannot write mail to the outbox {}: {error}", path.display())]
    Outbox {
        /// The folder or file concerned.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

impl MailError {
    /// Whether another attempt may succeed: yes for a connection that failed or timed out,
    /// an SMTP 4xx answer and an outbox write; not for a message that cannot be built, a
    /// configuration error, a permanent SMTP refusal (5xx), a TLS failure (a certificate) or
    /// what the client refuses to do (send credentials to a server without STARTTLS).
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Smtp { error, .. } => {
                !(error.is_permanent() || error.is_client() || error.is_tls())
            }
            MailError::Timeout { .. } | MailError::Outbox { .. } => true,
            MailError::Config(_) | MailError::Message { .. } => false,
        }
    }
}

/// Sends [`Mail`]: through SMTP, or into the outbox folder. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    delivery: Delivery,
    retry: RetryPolicy,
}

#[derive(Clone)]
enum Delivery {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, for messages and logs.
        server: String,
    },
    Outbox(PathBuf),
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Mailer");
        s.field("from", &self.inner.from.to_string());
        match &self.inner.delivery {
            Delivery::Smtp { server, .. } => s.field("smtp", server),
            Delivery::Outbox(dir) => s.field("outbox", dir),
        };
        s.finish()
    }
}

impl Mailer {
    /// A mailer for `settings`: SMTP when `smtp_url` is set, the outbox folder otherwise.
    /// Checks the URL but does not connect.
    pub fn from_settings(settings: &Settings) -> Result<Self, MailError> {
        let delivery = match &settings.smtp_url {
            Some(url) => smtp_delivery(url, hello_name(settings))?,
            None => Delivery::Outbox(settings.outbox_dir.clone()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                from: settings.mail_from_or_default(),
                delivery,
                retry: RetryPolicy::default(),
            }),
        })
    }

    /// The same mailer with another retry policy (tests retry without waiting seconds).
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.retry = retry;
                inner
            }
            Err(shared) => Inner {
                from: shared.from.clone(),
                delivery: shared.delivery.clone(),
                retry,
            },
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Sends `mail` by [`Mailer::send`], retrying per the [`RetryPolicy`], and counts each
    /// delivery, failed attempt and mail given up in `metrics`. Returns the last error when
    /// the mail was given up.
    pub async fn send_with_retries(&self, mail: &Mail, metrics: &Metrics) -> Result<(), MailError> {
        let policy = self.inner.retry;
        let attempts = policy.attempts.max(1);
        let mut delay = policy.first_delay;
        let mut attempt = 1;
        loop {
            let error = match self.send(mail).await {
                Ok(()) => {
                    metrics.mail_sent();
                    return Ok(());
                }
                Err(error) => error,
            };
            metrics.mail_attempt_failed();
            if attempt >= attempts || !error.is_transient() {
                metrics.mail_given_up();
                tracing::warn!(error = %error, to = %mail.to, subject = %mail.subject, attempt, "mail not sent; given up");
                return Err(error);
            }
            tracing::warn!(error = %error, to = %mail.to, subject = %mail.subject, attempt, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "mail not sent; will retry");
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }

    /// Sends `mail`, or writes it to the outbox. An SMTP delivery is bounded by
    /// [`SEND_TIMEOUT`].
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = self.build(mail)?;
        match &self.inner.delivery {
            Delivery::Smtp { transport, server } => {
                match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
                    Ok(Ok(_)) => {
                        tracing::info!(to = %mail.to, subject = %mail.subject, server = %server, "mail sent");
                        Ok(())
                    }
                    Ok(Err(error)) => Err(MailError::Smtp {
                        server: server.clone(),
                        error,
                    }),
                    Err(_) => Err(MailError::Timeout {
                        server: server.clone(),
                    }),
                }
            }
            Delivery::Outbox(dir) => {
                let bytes = message.formatted();
                let dir_owned = dir.clone();
                let path = tokio::task::spawn_blocking(move || write_outbox(&dir_owned, &bytes))
                    .await
                    .map_err(|e| MailError::Outbox {
                        path: dir.clone(),
                        error: std::io::Error::other(e.to_string()),
                    })??;
                tracing::info!(
                    to = %mail.to,
                    subject = %mail.subject,
                    path = %path.display(),
                    "no smtp_url configured: mail written to the outbox"
                );
                Ok(())
            }
        }
    }

    fn build(&self, mail: &Mail) -> Result<Message, MailError> {
        let refuse = |reason: String| MailError::Message {
            to: mail.to.to_string(),
            reason,
        };
        if mail.subject.chars().any(char::is_control) {
            return Err(refuse("the subject must be one line".to_owned()));
        }
        let to: Address = mail
            .to
            .as_str()
            .parse()
            .map_err(|e| refuse(format!("the address is not deliverable ({e})")))?;
        let id = format!(
            "<{:032x}@{}>",
            rand::random::<u128>(),
            self.inner.from.email.domain()
        );
        Message::builder()
            .from(self.inner.from.clone())
            .to(Mailbox::new(None, to))
            .subject(mail.subject.as_str())
            .message_id(Some(id))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
            .map_err(|e| refuse(e.to_string()))
    }
}

/// The EHLO name: the public host when it is a domain name, lettre's default otherwise.
fn hello_name(settings: &Settings) -> ClientId {
    match settings.public_url.as_ref().and_then(Url::host) {
        Some(Host::Domain(domain)) => ClientId::Domain(domain.to_owned()),
        _ => ClientId::default(),
    }
}

fn smtp_delivery(url: &Url, hello: ClientId) -> Result<Delivery, MailError> {
    let config = |why: String| MailError::Config(why);
    let implicit_tls = match url.scheme() {
        "smtps" => true,
        "smtp" => false,
        other => {
            return Err(config(format!(
                "scheme '{other}' is not supported; use smtp:// or smtps://"
            )))
        }
    };
    let host = match url.host() {
        Some(Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(config("the URL has no host".to_owned())),
    };
    let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
    let server = match url.host() {
        Some(Host::Ipv6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
        return Err(config(format!(
            "{server}: a path or fragment is not supported"
        )));
    }
    let mut tls_choice: Option<String> = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "tls" if !implicit_tls && tls_choice.is_none() => tls_choice = Some(value.into_owned()),
            "tls" if implicit_tls => {
                return Err(config(
                    "smtps:// always uses TLS; the tls parameter is for smtp:// only".to_owned(),
                ))
            }
            other => {
                return Err(config(format!(
                    "unsupported or repeated query parameter '{other}' (only tls=required|opportunistic|none)"
                )))
            }
        }
    }
    let credentials = credentials(url)?;
    let params = || {
        TlsParameters::new(host.clone())
            .map_err(|e| config(format!("cannot set up TLS for {host}: {e}")))
    };
    let tls = if implicit_tls {
        Tls::Wrapper(params()?)
    } else {
        match tls_choice.as_deref() {
            Some("required") => Tls::Required(params()?),
            Some("opportunistic") => Tls::Opportunistic(params()?),
            Some("none") => Tls::None,
            None if credentials.is_some() => Tls::Required(params()?),
            None => Tls::Opportunistic(params()?),
            Some(other) => {
                return Err(config(format!(
                    "tls={other} must be required, opportunistic or none"
                )))
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .hello_name(hello)
        .timeout(Some(SEND_TIMEOUT));
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    Ok(Delivery::Smtp {
        transport: builder.build(),
        server,
    })
}

/// User name and password from the URL's userinfo, percent-decoded.
fn credentials(url: &Url) -> Result<Option<Credentials>, MailError> {
    let decode = |part: &str, what: &str| -> Result<String, MailError> {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(Cow::into_owned)
            .map_err(|_| {
                MailError::Config(format!("the {what} is not valid percent-encoded UTF-8"))
            })
    };
    match (url.username(), url.password()) {
        ("", None) => Ok(None),
        ("", Some(_)) => Err(MailError::Config(
            "a password without a user name".to_owned(),
        )),
        (user, password) => Ok(Some(Credentials::new(
            decode(user, "user name")?,
            decode(password.unwrap_or(""), "password")?,
        ))),
    }
}

/// Writes `bytes` to `<dir>/<unix seconds>-<random hex>.eml` through a temporary file and a
/// rename, so a reader never sees half a message. Readable by the owner only: the mail may
/// hold one-time links.
fn write_outbox(dir: &Path, bytes: &[u8]) -> Result<PathBuf, MailError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |error| MailError::Outbox { path, error }
    };
    std::fs::create_dir_all(dir).map_err(fail(dir))?;
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!("{secs}-{:016x}.eml", rand::random::<u64>());
    let path = dir.join(&name);
    let temp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(MailError::Outbox { path, error });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_with(url: &str) -> Settings {
        Settings {
            smtp_url: Some(Url::parse(url).unwrap()),
            ..Settings::default()
        }
    }

    fn config_error(url: &str) -> String {
        match Mailer::from_settings(&settings_with(url)) {
            Err(e @ MailError::Config(_)) => e.to_string(),
            other => panic!("{url}: expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn debug_of_mail_hides_the_text() {
        let mail = Mail {
            to: Email::parse("dev@example.com").unwrap(),
            subject: "Reset your password".to_owned(),
            text: "https://gh.example.com/reset?token=ghrt_us_secret".to_owned(),
        };
        let shown = format!("{mail:?}");
        assert!(shown.contains("Reset your password"), "{shown}");
        assert!(!shown.contains("ghrt_us_secret"), "{shown}");
    }

    #[test]
    fn accepts_the_documented_url_forms() {
        for url in [
            "smtp://mail.example.com",
            "smtp://mail.example.com:2525",
            "smtp://user:p%40ss@mail.example.com:587",
            "smtp://mail.example.com?tls=required",
            "smtp://127.0.0.1:1025?tls=none",
            "smtp://[::1]:1025",
            "smtps://user:pass@mail.example.com",
        ] {
            let mailer = Mailer::from_settings(&settings_with(url));
            assert!(mailer.is_ok(), "{url}: {mailer:?}");
        }
    }

    #[test]
    fn refuses_what_it_would_ignore() {
        assert!(config_error("smtp://mail.example.com/ehlo").contains("path"));
        assert!(config_error("smtp://mail.example.com?tls=maybe").contains("tls=maybe"));
        assert!(config_error("smtp://mail.example.com?auth=plain").contains("'auth'"));
        assert!(config_error("smtps://mail.example.com?tls=none").contains("smtps://"));
        assert!(config_error("smtp://:secret@mail.example.com").contains("password"));
        assert!(config_error("http://mail.example.com").contains("'http'"));
    }

    #[test]
    fn errors_never_show_credentials() {
        let err = config_error("smtp://user:hunter2@mail.example.com/x");
        assert!(!err.contains("hunter2"), "{err}");
        let shown = format!(
            "{:?}",
            Mailer::from_settings(&settings_with("smtp://user:hunter2@mail.example.com")).unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("mail.example.com:587"), "{shown}");
    }

    #[test]
    fn one_line_subjects_only() {
        let mailer = Mailer::from_settings(&Settings::default()).unwrap();
        let mail = Mail {
            to: Email::parse("dev@example.com").unwrap(),
            subject: "Hello\r\nBcc: evil@example.com".to_owned(),
            text: String::new(),
        };
        assert!(matches!(
            mailer.build(&mail),
            Err(MailError::Message { .. })
        ));
    }

    #[test]
    fn outbox_files_are_complete_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b");
        let path = write_outbox(&target, b"Subject: x\r\n\r\nbody\r\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"Subject: x\r\n\r\nbody\r\n");
        let names: Vec<String> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let (secs, rest) = names[0].split_once('-').unwrap();
        assert!(secs.parse::<u64>().is_ok(), "{names:?}");
        let hex = rest.strip_suffix(".eml").unwrap();
        assert!(hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }
}
