//! rpm's database in its SQLite form, `rpmdb.sqlite` (RHEL and its
//! rebuilds from 9, Fedora from 33, openSUSE, Mageia): table `Packages`,
//! one rpm header per row. The file is opened from memory, read-only (the
//! BerkeleyDB and ndb forms of older releases are not read).
//!
//! A header blob is `il` and `dl` (big-endian u32), `il` index entries of
//! 16 bytes (tag, type, offset, count) and `dl` bytes of data; strings are
//! NUL-terminated. Everything is bounds-checked: a garbage database or
//! header yields no package (or skips that header), never a panic.

use super::{Ecosystem, OsInfo, Package, distro, purl};

const PATHS: [&str; 2] = ["var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"];

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Entries one header may hold (real ones hold a few hundred).
const MAX_ENTRIES: usize = 1 << 16;

pub(crate) fn wants(path: &str) -> bool {
    PATHS.contains(&path)
}

pub(crate) fn packages(path: &str, bytes: &[u8], os: Option<&OsInfo>) -> Vec<Package> {
    let Ok(headers) = headers(bytes) else { return Vec::new() };
    let namespace = match os.map(|o| o.id.as_str()) {
        Some("rhel") | None => "redhat",
        Some(id) => id,
    };
    let distro = distro(os);
    headers.iter().filter_map(|h| package(path, h, namespace, &distro)).collect()
}

/// Every header blob of the database.
fn headers(bytes: &[u8]) -> rusqlite::Result<Vec<Vec<u8>>> {
    let mut db = rusqlite::Connection::open_in_memory_with_flags(
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.deserialize_read_exact(rusqlite::MAIN_DB, bytes, bytes.len(), true)?;
    let mut stmt = db.prepare("SELECT blob FROM Packages")?;
    let rows = stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    Ok(rows.filter_map(Result::ok).collect())
}

fn package(path: &str, blob: &[u8], namespace: &str, distro: &str) -> Option<Package> {
    let h = Header::parse(blob)?;
    // Imported signing keys (`gpg-pubkey`) are listed too, as `rpm -qa`
    // and syft list them.
    let name = h.string(TAG_NAME)?;
    let (version, release) = (h.string(TAG_VERSION)?, h.string(TAG_RELEASE)?);
    let clean = |s: &str| !s.is_empty() && s.len() <= 256 && !s.contains(char::is_whitespace);
    if !clean(name) || !clean(version) || !clean(release) {
        return None;
    }
    let epoch = h.int32(TAG_EPOCH).filter(|e| *e > 0);
    let full = match epoch {
        Some(e) => format!("{e}:{version}-{release}"),
        None => format!("{version}-{release}"),
    };
    let arch = h.string(TAG_ARCH).filter(|a| clean(a));
    let source_rpm = h.string(TAG_SOURCERPM).filter(|s| clean(s));
    let source_name = source_rpm.and_then(source_name);
    let epoch_text = epoch.map(|e| e.to_string()).unwrap_or_default();
    Some(Package {
        name: name.to_owned(),
        version: full.clone(),
        ecosystem: Ecosystem::Rpm,
        purl: purl(
            "rpm",
            Some(namespace),
            name,
            &format!("{version}-{release}"),
            &[
                ("arch", arch.unwrap_or_default()),
                ("distro", distro),
                ("epoch", &epoch_text),
                ("upstream", source_rpm.unwrap_or_default()),
            ],
        ),
        path: path.to_owned(),
        licenses: h.string(TAG_LICENSE).filter(|l| !l.is_empty()).map(|l| vec![l.to_owned()]).unwrap_or_default(),
        source_version: source_name.map(|_| full),
        source_name: source_name.map(str::to_owned),
        arch: arch.map(str::to_owned),
    })
}

/// `openssl-3.0.7-24.el9.src.rpm` → `openssl`.
fn source_name(rpm: &str) -> Option<&str> {
    let stem = rpm.strip_suffix(".src.rpm").or_else(|| rpm.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = stem.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    (!name.is_empty()).then_some(name)
}

/// A parsed header: its index entries and data store.
struct Header<'a> {
    entries: Vec<(u32, u32, usize, usize)>,
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Option<Self> {
        let il = usize::try_from(be32(blob, 0)?).ok()?;
        let dl = usize::try_from(be32(blob, 4)?).ok()?;
        if il == 0 || il > MAX_ENTRIES {
            return None;
        }
        let data_start = il.checked_mul(16)?.checked_add(8)?;
        let data = blob.get(data_start..data_start.checked_add(dl)?)?;
        let mut entries = Vec::with_capacity(il);
        for i in 0..il {
            let at = 8 + i * 16;
            let (tag, kind) = (be32(blob, at)?, be32(blob, at + 4)?);
            let offset = usize::try_from(be32(blob, at + 8)?).ok()?;
            let count = usize::try_from(be32(blob, at + 12)?).ok()?;
            entries.push((tag, kind, offset, count));
        }
        Some(Self { entries, data })
    }

    fn entry(&self, tag: u32) -> Option<(u32, usize, usize)> {
        self.entries.iter().find(|e| e.0 == tag).map(|&(_, kind, offset, count)| (kind, offset, count))
    }

    /// A string tag (the first of an i18n or array one).
    fn string(&self, tag: u32) -> Option<&'a str> {
        let (kind, offset, _) = self.entry(tag)?;
        if !matches!(kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return None;
        }
        let rest = self.data.get(offset..)?;
        let end = memchr::memchr(0, rest)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    fn int32(&self, tag: u32) -> Option<u32> {
        let (kind, offset, count) = self.entry(tag)?;
        (kind == TYPE_INT32 && count >= 1).then(|| be32(self.data, offset)).flatten()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A header blob with these (tag, type, value) entries: strings or an
    /// INT32.
    pub(crate) fn header(entries: &[(u32, &str)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, value) in entries {
            if *tag == TAG_EPOCH {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
                index.push((*tag, TYPE_INT32, data.len() as u32, 1u32));
                data.extend(value.parse::<u32>().unwrap().to_be_bytes());
            } else {
                index.push((*tag, TYPE_STRING, data.len() as u32, 1u32));
                data.extend(value.as_bytes());
                data.push(0);
            }
        }
        let mut blob = Vec::new();
        blob.extend((index.len() as u32).to_be_bytes());
        blob.extend((data.len() as u32).to_be_bytes());
        for (t, k, o, c) in index {
            for v in [t, k, o, c] {
                blob.extend(v.to_be_bytes());
            }
        }
        blob.extend(data);
        blob
    }

    /// An rpmdb.sqlite holding these headers, as bytes.
    pub(crate) fn rpmdb(headers: &[Vec<u8>]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpmdb.sqlite");
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)").unwrap();
        for h in headers {
            db.execute("INSERT INTO Packages (blob) VALUES (?1)", [h]).unwrap();
        }
        drop(db);
        std::fs::read(path).unwrap()
    }

    pub(crate) fn openssl() -> Vec<u8> {
        header(&[
            (TAG_NAME, "openssl-libs"),
            (TAG_EPOCH, "1"),
            (TAG_VERSION, "3.0.7"),
            (TAG_RELEASE, "24.el9"),
            (TAG_ARCH, "x86_64"),
            (TAG_LICENSE, "ASL 2.0"),
            (TAG_SOURCERPM, "openssl-3.0.7-24.el9.src.rpm"),
        ])
    }

    #[test]
    fn packages_from_an_rpmdb() {
        let bash = header(&[(TAG_NAME, "bash"), (TAG_VERSION, "5.1.8"), (TAG_RELEASE, "6.el9"), (TAG_ARCH, "x86_64")]);
        let key = header(&[(TAG_NAME, "gpg-pubkey"), (TAG_VERSION, "fd431d51"), (TAG_RELEASE, "4ae0493b")]);
        let db = rpmdb(&[openssl(), bash, key, b"garbage".to_vec(), header(&[(TAG_NAME, "no-version")])]);
        let os = OsInfo { id: "almalinux".into(), version_id: Some("9.3".into()), pretty_name: None };
        let found = packages(PATHS[0], &db, Some(&os));
        assert_eq!(found.len(), 3, "{found:?}");
        let ssl = &found[0];
        assert_eq!((ssl.name.as_str(), ssl.version.as_str()), ("openssl-libs", "1:3.0.7-24.el9"));
        assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(ssl.licenses, ["ASL 2.0"]);
        assert_eq!(
            ssl.purl,
            "pkg:rpm/almalinux/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=almalinux-9.3&epoch=1&upstream=openssl-3.0.7-24.el9.src.rpm"
        );
        assert_eq!(found[1].version, "5.1.8-6.el9");
        assert_eq!((found[2].name.as_str(), found[2].version.as_str()), ("gpg-pubkey", "fd431d51-4ae0493b"));
    }

    #[test]
    fn garbage_is_no_packages() {
        assert!(packages(PATHS[0], b"SQLite format 3\0 but not really", None).is_empty());
        assert!(packages(PATHS[0], &[], None).is_empty());
        let mut truncated = openssl();
        truncated.truncate(30);
        assert!(Header::parse(&truncated).is_none());
        let mut lying = openssl();
        lying[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Header::parse(&lying).is_none());
        assert_eq!(source_name("weird.src.rpm"), None);
    }
}
