//! Running the Node.js clients and servers of `tests/clients/node/` (openid-client, the MCP
//! TypeScript SDK), installed by `./scripts/test-node-setup`. Without Node.js or the packages
//! the tests that use them fail, with the command that fixes it. Every wait is bounded, and a
//! process is stopped by its own handle (its pid), never by name.

use crate::helpers::WAIT;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The directory holding the scripts, `package.json` and `node_modules`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node")
}

/// `node`, or `$GATEHOUSE_TEST_NODE`; checked to run, and the packages to be installed.
fn node() -> Command {
    let bin = std::env::var_os("GATEHOUSE_TEST_NODE")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "node".into());
    let version = Command::new(&bin).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "Node.js ({}) does not run: run ./scripts/test-deps as root, then ./scripts/test-node-setup ({version:?})",
        bin.to_string_lossy()
    );
    for package in ["openid-client", "jose", "@modelcontextprotocol/sdk"] {
        let installed = dir()
            .join("node_modules")
            .join(package)
            .join("package.json");
        assert!(
            installed.exists(),
            "{} is missing: run ./scripts/test-node-setup",
            installed.display()
        );
    }
    let mut command = Command::new(bin);
    command.current_dir(dir());
    command
}

/// Reads all of `from` on a thread; the bytes arrive on the receiver at EOF.
fn drain(mut from: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// Runs `script` with `args` to its end (bounded by twice [`WAIT`]) while the test's servers
/// keep answering, and returns the JSON it printed. Fails with its stderr when it fails.
pub async fn run(script: &str, args: &[&str]) -> Value {
    let mut child = node()
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + WAIT * 2;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&stderr.recv().unwrap_or_default()).into_owned();
            panic!("{script} did not finish within {:?}:\n{stderr}", WAIT * 2);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stdout = stdout.recv_timeout(WAIT).unwrap_or_default();
    let stderr =
        String::from_utf8_lossy(&stderr.recv_timeout(WAIT).unwrap_or_default()).into_owned();
    assert!(status.success(), "{script} failed ({status}):\n{stderr}");
    serde_json::from_slice(&stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&stdout)
        )
    })
}

/// A Node server (`script`), running until dropped; it announces itself with one JSON line.
pub struct Server {
    child: Child,
    /// What the server printed first (for example `{"port": 41234}`).
    pub hello: Value,
}

impl Server {
    pub async fn start(script: &str, args: &[&str]) -> Server {
        let mut child = node()
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let hello = loop {
            match rx.try_recv() {
                Ok(line) => break serde_json::from_str(&line).unwrap(),
                Err(mpsc::TryRecvError::Disconnected) => {
                    let status = child.wait().unwrap();
                    panic!("{script} exited ({status}) before announcing itself");
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                let _ = child.wait();
                panic!("{script} did not announce itself within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Server { child, hello }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
