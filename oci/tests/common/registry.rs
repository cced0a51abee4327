//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry),
//! installed with apt when missing, run with its own configuration on 127.0.0.1 and a free port,
//! optionally with TLS (a test CA) and htpasswd authentication. Stopped when dropped.
//!
//! Shared by supsvc-oci's, supsvc-webhook's and the CLI's tests (`#[path]`-included).
#![allow(dead_code)]

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/bin/docker-registry";

/// How the registry is set up.
#[derive(Debug, Clone, Default)]
pub struct RegistrySetup {
    /// Serve HTTPS with a certificate of a test CA (written to `ca.crt`).
    pub tls: bool,
    /// Require HTTP basic authentication with this username and password (htpasswd, bcrypt).
    pub user: Option<(String, String)>,
}

/// A running registry.
pub struct TestRegistry {
    child: Option<Child>,
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The working directory: configuration, storage, certificates, log.
    pub dir: tempfile::TempDir,
    /// The CA certificate (PEM) the registry's certificate is signed by, when TLS.
    pub ca_file: Option<PathBuf>,
    setup: RegistrySetup,
    port: u16,
}

impl std::fmt::Debug for TestRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestRegistry({})", self.host)
    }
}

static INSTALL: Mutex<()> = Mutex::new(());

/// Installs Debian's docker-registry when it is missing (as root, `apt-get update` first): the
/// tests need a real registry on a fresh machine.
pub fn ensure_installed() {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if Path::new(BINARY).exists() {
        return;
    }
    let apt = |args: &[&str]| {
        let status = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600", "-q"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("apt-get runs (the tests install docker-registry, as root)");
        assert!(status.success(), "apt-get {args:?} failed");
    };
    apt(&["update"]);
    apt(&[
        "install",
        "-y",
        "--no-install-recommends",
        "docker-registry",
    ]);
    assert!(
        Path::new(BINARY).exists(),
        "docker-registry installed at {BINARY}"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_tls(dir: &Path) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "supsvc test registry CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("registry.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("registry.key"), key.serialize_pem()).unwrap();
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    ca_file
}

impl TestRegistry {
    /// Starts a registry and waits until it accepts connections.
    pub fn start(setup: RegistrySetup) -> Self {
        ensure_installed();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = setup.tls.then(|| write_tls(dir.path()));
        let port = free_port();
        let mut registry = Self {
            child: None,
            host: format!("127.0.0.1:{port}"),
            dir,
            ca_file,
            setup,
            port,
        };
        registry.write_config();
        registry.run();
        registry
    }

    fn write_config(&self) {
        let dir = self.dir.path();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n  secret: supsvc-test-secret\n",
            dir.join("data").display(),
            self.port
        );
        if self.setup.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.join("registry.crt").display(),
                dir.join("registry.key").display()
            ));
        }
        if let Some((username, password)) = &self.setup.user {
            let hash = bcrypt::hash(password, 4).unwrap();
            std::fs::write(dir.join("htpasswd"), format!("{username}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: supsvc-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
    }

    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        self.child = Some(child);
        // Waiting for the port, not timing anything: 30 s is for a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&self.host).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("docker-registry exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Stops the registry (the storage stays: [`TestRegistry::restart`] serves it again).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped registry again on the same port, with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// `registry://127.0.0.1:<port>/<repository>`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("registry://{}/{repository_and_tag}", self.host)
    }

    /// The file the registry stores the blob with this digest (`sha256:<hex>`) in: the
    /// distribution registry's filesystem layout, for tests that tamper with what it serves.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// A docker config.json with `username:password` for this registry, written to `path`.
    pub fn write_docker_config(&self, path: &Path, username: &str, password: &str) {
        use base64::Engine as _;
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let json = serde_json::json!({"auths": {self.host.clone(): {"auth": auth}}});
        let mut file = std::fs::File::create(path).unwrap();
        file.write_all(json.to_string().as_bytes()).unwrap();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
