//! Debian's Distribution (`docker-registry`, which `.ci/run` installs) as a
//! peer of the tests: on a loopback port, with its own filesystem storage,
//! optionally behind htpasswd Basic auth; killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct Distribution {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Distribution {
    /// Started with `htpasswd` users (`user`, `password`) when given.
    pub fn start(users: &[(&str, &str)]) -> Self {
        let bin = Path::new("/usr/bin/docker-registry");
        assert!(bin.exists(), "docker-registry is missing (run .ci/run)");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if !users.is_empty() {
            let file = dir.path().join("htpasswd");
            for (i, (user, password)) in users.iter().enumerate() {
                let mut cmd = Command::new("htpasswd");
                cmd.arg("-bB");
                if i == 0 {
                    cmd.arg("-c");
                }
                let out = cmd.arg(&file).arg(user).arg(password).output().expect("htpasswd (run .ci/run)");
                assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
            }
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: e2e\n    path: {}\n", file.display()));
        }
        let config_file = dir.path().join("config.yml");
        std::fs::write(&config_file, config).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_file)
            .env_remove("AWS_CA_BUNDLE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap();
        let d = Self { child: Some(child), port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, as registry clients name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its storage's root folder (`rootdirectory`).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops it; its storage stays until it is dropped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}
