//! A `mesh-node demo` process serving its dashboard, for the HTTP and
//! browser tests. Stopped with SIGTERM when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// An HTTP client that returns error statuses as responses (tests assert
/// them), every call bounded by `timeout`.
pub fn http_client(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// How long the demo's story may take before its dashboard phase.
pub const STORY: Duration = Duration::from_secs(180);

/// A demo with its dashboard up.
pub struct Demo {
    child: Child,
    lines: Receiver<String>,
    /// Everything it printed so far.
    pub output: Vec<String>,
    /// The dashboard's base URL (`http://127.0.0.1:PORT/`).
    pub url: String,
    /// The write token.
    pub token: String,
    /// Its data directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Demo {
    /// Start the demo (4 agents, a short story) and wait until it says the
    /// mesh keeps running for the dashboard.
    pub fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let data: PathBuf = dir.path().join("demo");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-node"))
            .args([
                "demo",
                "--agents",
                "4",
                "--seconds",
                "2",
                "--http",
                "127.0.0.1:0",
                // Tests run in parallel: no agent API on its fixed port.
                "--no-api",
                "--linger",
                "600",
                "--data-dir",
            ])
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mesh-node demo runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut demo = Demo {
            child,
            lines,
            output: Vec::new(),
            url: String::new(),
            token: String::new(),
            dir,
        };
        demo.wait_for("the mesh keeps running", STORY);
        // "dashboard: http://127.0.0.1:PORT/ (the first agent's node; …)"
        let line = demo
            .output
            .iter()
            .find(|l| l.starts_with("dashboard: "))
            .cloned()
            .unwrap_or_else(|| panic!("no dashboard line in:\n{}", demo.output.join("\n")));
        demo.url = line.split(' ').nth(1).unwrap_or_default().to_string();
        assert!(demo.url.starts_with("http://127.0.0.1:"), "{line}");
        // The token file ends with a newline.
        demo.token = std::fs::read_to_string(data.join("http-token"))
            .unwrap()
            .trim()
            .to_string();
        demo
    }

    /// Wait (bounded) for a printed line containing `text`.
    pub fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "the demo never printed {text:?}; it printed:\n{}",
                    self.output.join("\n")
                ),
            }
        }
    }

    /// SIGTERM, then wait for it to verify its ledgers and exit; its status.
    pub fn stop(mut self) -> (bool, Vec<String>) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STORY;
        while Instant::now() < deadline {
            while let Ok(line) = self.lines.try_recv() {
                self.output.push(line);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread may still hold the last lines.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
                    self.output.push(line);
                }
                return (status.success(), std::mem::take(&mut self.output));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the demo did not stop on SIGTERM");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
