//! A throwaway OpenLDAP server for tests: Debian's `slapd` with its own
//! `cn=config` folder, an mdb database and the memberof overlay, listening
//! on two free loopback ports (plain with StartTLS, and ldaps with a
//! certificate from a CA made for it), loaded with [`USERS`] and
//! [`GROUPS`], killed and removed when dropped. It accepts unauthenticated
//! binds (a DN with an empty password), as some servers do, so that tests
//! can show berth never treats one as a login.
//!
//! When `slapd` is not installed the test is skipped, unless
//! `BERTH_TEST_REQUIRE_EMULATORS=1` (CI), which makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::REQUIRE_EMULATORS;

pub const BASE_DN: &str = "dc=example,dc=org";
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=org";
/// Groups outside [`GROUPS_DN`]: never attached when the group base is it.
pub const OTHER_DN: &str = "ou=other,dc=example,dc=org";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "root-secret";
/// The search account.
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
pub const READER_PW: &str = "reader-secret";
pub const USER_FILTER: &str = "(objectClass=inetOrgPerson)";
pub const GROUP_FILTER: &str = "(objectClass=groupOfNames)";

/// A user of the fixture.
#[derive(Debug, Clone, Copy)]
pub struct FixtureUser {
    pub uid: &'static str,
    pub password: &'static str,
    pub cn: &'static str,
    /// Empty for none.
    pub mail: &'static str,
    /// Where the entry is (`ou=people` but for the second `twin`).
    pub ou: &'static str,
}

const fn user(uid: &'static str, password: &'static str, cn: &'static str, mail: &'static str) -> FixtureUser {
    FixtureUser { uid, password, cn, mail, ou: PEOPLE_DN }
}

pub const ALICE: FixtureUser = user("alice", "alice-pw", "Alice Liddell", "alice@example.org");
pub const BOB: FixtureUser = user("bob", "bob-pw", "Bob Builder", "bob@example.org");
pub const CAROL: FixtureUser = user("carol", "carol-pw", "Carol Admin", "carol@example.org");
pub const DAVE: FixtureUser = user("dave", "dave-pw", "Dave Outside", "");
/// A name with filter metacharacters: it must sign in like any other.
pub const PAREN: FixtureUser = user("o(k)*", "paren-pw", "Paren Thesis", "paren@example.org");

/// An entry named like berth's local administrator.
pub const LDAP_ADMIN: FixtureUser = user("admin", "ldap-admin-pw", "Not The Admin", "");

/// Every user; `twin` exists twice (in `ou=people` and `ou=other`), so a
/// search for it is ambiguous.
pub const USERS: &[FixtureUser] = &[
    ALICE,
    BOB,
    CAROL,
    DAVE,
    PAREN,
    LDAP_ADMIN,
    user("twin", "twin-pw", "Twin One", ""),
    FixtureUser { uid: "twin", password: "twin-pw", cn: "Twin Two", mail: "", ou: OTHER_DN },
];

/// The `groupOfNames` groups: (cn, parent, member uids).
pub const GROUPS: &[(&str, &str, &[&str])] = &[
    ("developers", GROUPS_DN, &["alice", "carol"]),
    ("qa", GROUPS_DN, &["bob"]),
    ("admins", GROUPS_DN, &["carol"]),
    ("outsiders", OTHER_DN, &["dave", "alice"]),
];

pub fn user_dn(u: &FixtureUser) -> String {
    format!("uid={},{}", ldap3::dn_escape(u.uid), u.ou)
}

pub fn group_dn(cn: &str) -> String {
    let parent = GROUPS.iter().find(|g| g.0 == cn).map_or(GROUPS_DN, |g| g.1);
    format!("cn={cn},{parent}")
}

/// A running slapd.
#[derive(Debug)]
pub struct Slapd {
    child: Option<Child>,
    dir: PathBuf,
    pub port: u16,
    pub tls_port: u16,
}

/// A program of the slapd and ldap-utils packages, wherever it is.
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Slapd {
    /// Starts a loaded server, or `None` (the test skips) when slapd is not
    /// installed and `BERTH_TEST_REQUIRE_EMULATORS` is not `1`.
    pub fn start(test: &str) -> Option<Self> {
        let tools = ["slapd", "slapadd", "slappasswd", "ldapadd", "openssl"];
        let missing: Vec<&str> = tools.iter().copied().filter(|t| program(t).is_none()).collect();
        if !missing.is_empty() {
            let required = std::env::var(REQUIRE_EMULATORS).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{test}: {} not installed but {REQUIRE_EMULATORS}=1 (apt-get install slapd ldap-utils openssl)",
                missing.join(", ")
            );
            eprintln!("skipping {test}: {} not installed (apt-get install slapd ldap-utils)", missing.join(", "));
            return None;
        }
        let dir = std::env::temp_dir().join(super::unique("berth-slapd-"));
        std::fs::create_dir_all(dir.join("slapd.d")).unwrap();
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let mut slapd = Self { child: None, port: free_port(), tls_port: free_port(), dir };
        slapd.make_certificates();
        slapd.configure();
        slapd.launch();
        slapd.load();
        Some(slapd)
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    /// The CA that signed the server's certificate (for `SSL_CERT_FILE`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Kills the server (a test of an unreachable directory).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Caps the entries one search returns (`olcSizeLimit`), as busy
    /// directories do.
    pub fn set_size_limit(&self, limit: u32) {
        let ldif = format!(
            "dn: olcDatabase={{1}}mdb,cn=config\nchangetype: modify\nreplace: olcSizeLimit\nolcSizeLimit: {limit}\n"
        );
        let file = self.path("size-limit.ldif");
        std::fs::write(&file, ldif).unwrap();
        run(Command::new(program("ldapmodify").unwrap())
            .args(["-x", "-H", &self.url(), "-D", "cn=config", "-w", ROOT_PW, "-f"])
            .arg(file));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A CA and a server certificate for 127.0.0.1 signed by it.
    fn make_certificates(&self) {
        let openssl = || {
            let mut c = Command::new(program("openssl").unwrap());
            c.current_dir(&self.dir);
            c
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        run(openssl().args(["req", "-x509"]).args(ec).args([
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]));
        run(openssl().args(["req"]).args(ec).args(["-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "srv.csr"]));
        std::fs::write(
            self.path("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(openssl().args([
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ]));
    }

    /// The `cn=config` database, loaded offline with slapadd.
    fn configure(&self) {
        let d = self.dir.display();
        let schemas = Path::new("/etc/ldap/schema");
        let include = |name: &str| format!("include: file://{}\n", schemas.join(format!("{name}.ldif")).display());
        let config = format!(
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {d}/slapd.pid\n\
             olcAllows: bind_anon_dn\n\
             olcTLSCertificateFile: {d}/cert.pem\nolcTLSCertificateKeyFile: {d}/key.pem\n\n\
             dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
             olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\nolcModuleLoad: memberof\n\n\
             dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
             {}{}{}{}\n\
             dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\n\
             objectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\n\n\
             dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {{0}}config\n\
             olcRootDN: cn=config\nolcRootPW: {ROOT_PW}\nolcAccess: {{0}}to * by * none\n\n\
             dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n\
             olcDatabase: {{1}}mdb\nolcSuffix: {BASE_DN}\nolcRootDN: {ROOT_DN}\nolcRootPW: {ROOT_PW}\n\
             olcDbDirectory: {d}/db\nolcDbMaxSize: 16777216\n\
             olcAccess: {{0}}to attrs=userPassword by anonymous auth by self read by * none\n\
             olcAccess: {{1}}to * by * read\n\n\
             dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config\nobjectClass: olcOverlayConfig\n\
             objectClass: olcMemberOf\nolcOverlay: {{0}}memberof\nolcMemberOfRefInt: TRUE\n",
            include("core"),
            include("cosine"),
            include("nis"),
            include("inetorgperson"),
        );
        std::fs::write(self.path("config.ldif"), config).unwrap();
        run(Command::new(program("slapadd").unwrap())
            .args(["-n0", "-F"])
            .arg(self.path("slapd.d"))
            .arg("-l")
            .arg(self.path("config.ldif")));
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.path("slapd.log")).unwrap();
        let urls = format!("{}/ {}/", self.url(), self.ldaps_url());
        let child = Command::new(program("slapd").unwrap())
            .arg("-F")
            .arg(self.path("slapd.d"))
            .args(["-h", &urls, "-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = [self.port, self.tls_port].iter().all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if up {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                let log = std::fs::read_to_string(self.path("slapd.log")).unwrap_or_default();
                panic!("slapd exited with {status}:\n{log}");
            }
            assert!(Instant::now() < deadline, "slapd did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The entries, added online so that the memberof overlay sees them.
    fn load(&self) {
        let hash = |pw: &str| run(Command::new(program("slappasswd").unwrap()).args(["-s", pw]));
        let mut ldif = format!(
            "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n\
             userPassword: {}\n\n",
            hash(READER_PW)
        );
        for ou in [PEOPLE_DN, GROUPS_DN, OTHER_DN] {
            let name = ou.split(',').next().unwrap().trim_start_matches("ou=");
            ldif.push_str(&format!("dn: {ou}\nobjectClass: organizationalUnit\nou: {name}\n\n"));
        }
        for u in USERS {
            let sn = u.cn.rsplit(' ').next().unwrap();
            ldif.push_str(&format!(
                "dn: {}\nobjectClass: inetOrgPerson\nuid: {}\ncn: {}\nsn: {sn}\nuserPassword: {}\n",
                user_dn(u),
                u.uid,
                u.cn,
                hash(u.password)
            ));
            if !u.mail.is_empty() {
                ldif.push_str(&format!("mail: {}\n", u.mail));
            }
            ldif.push('\n');
        }
        for (cn, _, members) in GROUPS {
            ldif.push_str(&format!("dn: {}\nobjectClass: groupOfNames\ncn: {cn}\n", group_dn(cn)));
            for m in *members {
                let u = USERS.iter().find(|u| u.uid == *m).unwrap();
                ldif.push_str(&format!("member: {}\n", user_dn(u)));
            }
            ldif.push('\n');
        }
        std::fs::write(self.path("data.ldif"), ldif).unwrap();
        run(Command::new(program("ldapadd").unwrap())
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW, "-f"])
            .arg(self.path("data.ldif")));
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
