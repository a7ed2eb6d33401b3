//! Test support for this and other crates' tests (cargo feature `testing`): a real SMTP server
//! that stores what it receives, and helpers to read it.
//!
//! [`SmtpSink`] runs `python -m aiosmtpd` with its `Mailbox` handler on a free loopback port
//! and a temporary maildir. The interpreter is `$GATEHOUSE_TEST_PYTHON`, or else
//! `<workspace>/target/test-venv/bin/python`, which `./scripts/test-python-setup` creates.

// Test support compiled into the library under a feature: a helper that cannot do its job
// must fail the test loudly, so panicking (and unwrap/expect) is the intended behaviour here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long [`SmtpSink::start`] waits for the server and [`SmtpSink::wait_for_mail`] for a mail:
/// generous, for a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// Runs aiosmtpd's command line, first starting a thread that ends the process when its
/// standard input closes: the server then dies with the test process even when that is
/// killed outright and no `Drop` runs.
const LAUNCHER: &str = r#"
import os, runpy, sys, threading
import aiosmtpd
def _exit_with_parent():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=_exit_with_parent, daemon=True).start()
sys.argv = ["aiosmtpd"] + sys.argv[1:]
runpy.run_module("aiosmtpd", run_name="__main__", alter_sys=True)
"#;

/// A real SMTP server for one test. Its process is killed when the sink is dropped.
pub struct SmtpSink {
    child: Child,
    port: u16,
    maildir: PathBuf,
    log: PathBuf,
    /// Files already returned by [`SmtpSink::wait_for_mail`].
    taken: Mutex<HashSet<PathBuf>>,
    /// Holds the maildir and the server's log; removed on drop, after the process is gone.
    _dir: tempfile::TempDir,
}

/// A mail as the sink received it, headers decoded (RFC 2047) and the body decoded from its
/// transfer encoding and charset, line endings as `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `To` header.
    pub to: String,
    /// The `From` header.
    pub from: String,
    /// The `Subject` header.
    pub subject: String,
    /// The text: the body of a single-part mail, or its first `text/plain` part.
    pub body: String,
}

/// Whether the server on `port` greets as aiosmtpd does (`220 <host> Python SMTP …`) within a
/// second.
async fn greets_as_aiosmtpd(port: u16) -> bool {
    use tokio::io::AsyncReadExt;
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut greeting = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut greeting)).await;
    let Ok(Ok(n)) = read else {
        return false;
    };
    let text = String::from_utf8_lossy(greeting.get(..n).unwrap_or_default());
    text.starts_with("220 ") && text.contains("Python SMTP")
}

impl SmtpSink {
    /// Starts the server and waits (at most 30 s) until it accepts connections.
    ///
    /// # Panics
    /// When the interpreter or aiosmtpd is missing, or the server does not come up: the test
    /// fails rather than skips.
    pub async fn start() -> SmtpSink {
        let python = python();
        let mut failures = Vec::new();
        // A free port can be taken by someone else before the server binds it: try again.
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("gatehouse-smtp-sink-")
                .tempdir()
                .expect("SMTP sink: cannot create a temporary folder");
            let maildir = dir.path().join("maildir");
            let log = dir.path().join("aiosmtpd.log");
            let port = free_port();
            let out = File::create(&log).expect("SMTP sink: cannot create its log file");
            let err = out
                .try_clone()
                .expect("SMTP sink: cannot share its log file");
            let mut child = Command::new(&python)
                .arg("-c")
                .arg(LAUNCHER)
                .args(["-n", "-l", &format!("127.0.0.1:{port}")])
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdin(Stdio::piped())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "SMTP sink: cannot run {}: {e}. Run ./scripts/test-python-setup, or set \
                         GATEHOUSE_TEST_PYTHON to a Python with aiosmtpd installed.",
                        python.display()
                    )
                });
            let deadline = Instant::now() + WAIT;
            loop {
                if let Some(status) = child.try_wait().expect("SMTP sink: cannot poll aiosmtpd") {
                    let output = std::fs::read_to_string(&log).unwrap_or_default();
                    if output.contains("Address already in use") {
                        failures.push(format!("port {port} was taken"));
                        break;
                    }
                    panic!(
                        "SMTP sink: {} -m aiosmtpd exited ({status}) before listening; is \
                         aiosmtpd installed (./scripts/test-python-setup)? Its output:\n{output}",
                        python.display()
                    );
                }
                // Whatever answers must be this aiosmtpd: another test's server may have
                // bound the port between free_port() and aiosmtpd's own bind.
                if greets_as_aiosmtpd(port).await && matches!(child.try_wait(), Ok(None)) {
                    return SmtpSink {
                        child,
                        port,
                        maildir,
                        log,
                        taken: Mutex::new(HashSet::new()),
                        _dir: dir,
                    };
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    let output = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!(
                        "SMTP sink: aiosmtpd did not accept connections on 127.0.0.1:{port} \
                         within {} s. Its output:\n{output}",
                        WAIT.as_secs()
                    );
                }
                tokio::time::sleep(POLL).await;
            }
        }
        panic!(
            "SMTP sink: could not start aiosmtpd: {}",
            failures.join("; ")
        );
    }

    /// The URL to put in `smtp_url`: `smtp://127.0.0.1:PORT` (plain SMTP, no TLS, no auth).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits (at most 30 s, polling every 50 ms) for a mail addressed to `to` whose subject
    /// contains `subject_contains`, and returns it. Each mail is returned once: a second
    /// call waits for another matching mail, so a test can wait for the next one.
    ///
    /// # Panics
    /// When no such mail arrives in time, listing what did arrive.
    pub async fn wait_for_mail(&self, to: &str, subject_contains: &str) -> ReceivedMail {
        let deadline = Instant::now() + WAIT;
        loop {
            for (path, mail) in self.read() {
                let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
                if !taken.contains(&path)
                    && addressed_to(&mail.to, to)
                    && mail.subject.contains(subject_contains)
                {
                    taken.insert(path);
                    return mail;
                }
            }
            if Instant::now() >= deadline {
                let arrived: Vec<String> = self
                    .read()
                    .into_iter()
                    .map(|(path, m)| {
                        let seen = if self
                            .taken
                            .lock()
                            .map(|t| t.contains(&path))
                            .unwrap_or(false)
                        {
                            " (already returned)"
                        } else {
                            ""
                        };
                        format!("  to {:?}, subject {:?}{seen}", m.to, m.subject)
                    })
                    .collect();
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!(
                    "SMTP sink: no mail to {to:?} with a subject containing {subject_contains:?} \
                     within {} s. Received {}:\n{}\naiosmtpd output:\n{log}",
                    WAIT.as_secs(),
                    arrived.len(),
                    arrived.join("\n")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every mail received so far, in order of arrival.
    pub fn all(&self) -> Vec<ReceivedMail> {
        self.read().into_iter().map(|(_, mail)| mail).collect()
    }

    /// The maildir's messages in order of delivery (aiosmtpd's `Q` counter in the file name).
    fn read(&self) -> Vec<(PathBuf, ReceivedMail)> {
        let mut files: Vec<(u64, String, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let order = delivery_number(&name).unwrap_or(u64::MAX);
                files.push((order, name, entry.path()));
            }
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, _, path)| {
                let bytes = std::fs::read(&path).ok()?;
                Some((path, parse(&bytes)))
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first URL in `body` that starts with `prefix`: up to the next space, quote or angle
/// bracket, without trailing sentence punctuation.
pub fn first_link(body: &str, prefix: &str) -> Option<String> {
    let start = body.find(prefix)?;
    let rest = &body[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''))
        .unwrap_or(rest.len())
        .max(prefix.len());
    let tail = rest[prefix.len()..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
    Some(format!("{prefix}{tail}"))
}

/// The test Python (aiosmtpd, openapi-spec-validator): `$GATEHOUSE_TEST_PYTHON` or the
/// workspace's test venv, which `./scripts/test-python-setup` creates.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("GATEHOUSE_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    workspace_root().join("target/test-venv/bin/python")
}

/// The folder holding `Cargo.lock`, above this crate's manifest.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(manifest)
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("SMTP sink: cannot find a free port")
        .port()
}

/// The delivery counter of a maildir file name `TIME.M<usec>P<pid>Q<n>.HOST`.
fn delivery_number(name: &str) -> Option<u64> {
    let after = name.split_once('Q')?.1;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn addressed_to(to_header: &str, wanted: &str) -> bool {
    match mailparse::addrparse(to_header) {
        Ok(list) => list.iter().any(|addr| match addr {
            mailparse::MailAddr::Single(info) => info.addr.eq_ignore_ascii_case(wanted),
            mailparse::MailAddr::Group(group) => group
                .addrs
                .iter()
                .any(|info| info.addr.eq_ignore_ascii_case(wanted)),
        }),
        Err(_) => to_header
            .to_ascii_lowercase()
            .contains(&wanted.to_ascii_lowercase()),
    }
}

fn parse(bytes: &[u8]) -> ReceivedMail {
    let Ok(mail) = mailparse::parse_mail(bytes) else {
        return ReceivedMail {
            to: String::new(),
            from: String::new(),
            subject: "<unparseable message>".to_owned(),
            body: String::from_utf8_lossy(bytes).into_owned(),
        };
    };
    let header = |name: &str| {
        use mailparse::MailHeaderMap;
        mail.headers.get_first_value(name).unwrap_or_default()
    };
    ReceivedMail {
        to: header("To"),
        from: header("From"),
        subject: header("Subject"),
        body: text_of(&mail).replace("\r\n", "\n"),
    }
}

/// The body of a single-part mail, or the first `text/plain` part of a multipart one.
fn text_of(part: &mailparse::ParsedMail<'_>) -> String {
    if part.subparts.is_empty() {
        return part.get_body().unwrap_or_default();
    }
    part.subparts
        .iter()
        .find(|p| p.subparts.is_empty() && p.ctype.mimetype == "text/plain")
        .or_else(|| part.subparts.first())
        .map(text_of)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_link_stops_at_the_end_of_the_url() {
        let body = "Hello,\n\nconfirm at https://gh.example.com/confirm?t=abc_123.\nOr <https://gh.example.com/x>, or \"https://other.example.com/y\"";
        assert_eq!(
            first_link(body, "https://gh.example.com/confirm").as_deref(),
            Some("https://gh.example.com/confirm?t=abc_123")
        );
        assert_eq!(
            first_link(body, "https://gh.example.com/x").as_deref(),
            Some("https://gh.example.com/x")
        );
        assert_eq!(
            first_link(body, "https://other.").as_deref(),
            Some("https://other.example.com/y")
        );
        assert_eq!(first_link(body, "https://nowhere.example.com"), None);
    }

    #[test]
    fn maildir_names_sort_by_delivery() {
        assert_eq!(delivery_number("1712345678.M5P1234Q12.host"), Some(12));
        assert_eq!(delivery_number("garbage"), None);
    }

    #[test]
    fn recipients_match_exactly() {
        assert!(addressed_to("dev@example.com", "DEV@example.com"));
        assert!(addressed_to(
            "Dev <dev@example.com>, x@example.com",
            "x@example.com"
        ));
        assert!(!addressed_to("adev@example.com", "dev@example.com"));
    }
}
