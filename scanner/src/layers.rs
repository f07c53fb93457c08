//! An image's layers to the files the catalogers read.
//!
//! Each layer blob is walked once as a stream (nothing is extracted to disk)
//! and only the paths [`crate::inventory::wants`] names are kept in memory,
//! plus the Go build info of ELF executables. OCI whiteouts apply across
//! layers: `.wh.<name>` deletes `<name>` (and all below it) from lower layers
//! and `.wh..wh..opq` empties its directory of lower layers' files, so a
//! package database that an upper layer replaces or deletes counts as the
//! upper layer says.
//!
//! Paths are normalised lexically, relative to the image root, without a
//! leading `/`. An entry whose path leaves the root is ignored. Symbolic
//! links are never followed; a hard link to a file kept from this image is
//! resolved to a copy of it, any other link is ignored.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read};

use crate::inventory::{self, golang::BuildInfo};
use crate::{Limits, ScanError};

/// One layer blob as stored in the registry, with its descriptor's media
/// type. Layers are handed to [`crate::inventory()`] bottom first, in the
/// manifest's order.
#[derive(Debug, Clone)]
pub struct Layer<R> {
    pub media_type: String,
    pub reader: R,
}

impl<R: Read> Layer<R> {
    pub fn new(media_type: impl Into<String>, reader: R) -> Self {
        Layer { media_type: media_type.into(), reader }
    }
}

/// What was kept of one path of the merged image.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FileData {
    /// The whole file, for a cataloger to parse.
    Bytes(Vec<u8>),
    /// An ELF executable's Go build info (the binary itself is not kept).
    Go(BuildInfo),
}

/// The merged view of the kept files, by normalised path.
pub(crate) type Files = BTreeMap<String, FileData>;

const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";

/// Reads the layers in order and merges the kept files as the image's root
/// file system would show them.
pub(crate) fn collect<R: Read>(
    layers: impl IntoIterator<Item = Layer<R>>,
    limits: &Limits,
) -> Result<Files, ScanError> {
    let budget = Budget { total: Cell::new(0), hit: Cell::new(None) };
    let mut files = Files::new();
    for (index, layer) in layers.into_iter().enumerate() {
        if index >= limits.max_layers {
            return Err(ScanError::limit(format!("more than {} layers", limits.max_layers)));
        }
        let stream = open(&layer.media_type, layer.reader)?;
        let counted = Counted { inner: stream, layer: 0, budget: &budget, limits };
        read_layer(counted, &mut files, limits).map_err(|e| budget.error(index, e))?;
    }
    Ok(files)
}

/// Lowest part of a layer's media type that says how its tar is compressed.
fn open<'a, R: Read + 'a>(media_type: &str, reader: R) -> Result<Box<dyn Read + 'a>, ScanError> {
    let essence = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let unsupported = || ScanError::Unsupported { media_type: media_type.to_owned() };
    let known = matches!(
        essence.as_str(),
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            | "application/x-tar"
    );
    if !known {
        return Err(unsupported());
    }
    // Some tools label gzipped layers as plain tar (and the reverse), so the
    // stream's magic number decides, not the label.
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(unsupported())
    } else {
        Ok(Box::new(buffered))
    }
}

/// Decompressed bytes read so far, shared by all layers of one image.
struct Budget {
    total: Cell<u64>,
    hit: Cell<Option<String>>,
}

impl Budget {
    /// The error to report for a failed layer: a limit that stopped the
    /// stream wins over whatever error the tar or gzip reader made of it.
    fn error(&self, index: usize, error: ScanError) -> ScanError {
        if let Some(what) = self.hit.take() {
            return ScanError::limit(what);
        }
        match error {
            ScanError::Io(e) => match e.kind() {
                io::ErrorKind::InvalidData
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::Other => ScanError::malformed(format!("layer {index}: {e}")),
                _ => ScanError::Io(e),
            },
            other => other,
        }
    }
}

/// Counts the decompressed bytes of one layer against the per-layer and the
/// total bound, and fails the stream once either is passed.
struct Counted<'b, R> {
    inner: R,
    layer: u64,
    budget: &'b Budget,
    limits: &'b Limits,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.layer += n as u64;
        let total = self.budget.total.get() + n as u64;
        self.budget.total.set(total);
        let what = if self.layer > self.limits.max_layer_bytes {
            Some(format!("a layer decompresses to more than {} bytes", self.limits.max_layer_bytes))
        } else if total > self.limits.max_total_bytes {
            Some(format!("the layers decompress to more than {} bytes", self.limits.max_total_bytes))
        } else {
            None
        };
        if let Some(what) = what {
            let error = io::Error::other(what.clone());
            self.budget.hit.set(Some(what));
            return Err(error);
        }
        Ok(n)
    }
}

fn read_layer<R: Read>(stream: R, files: &mut Files, limits: &Limits) -> Result<(), ScanError> {
    let mut archive = tar::Archive::new(stream);
    let mut added = Files::new();
    let mut deleted = BTreeSet::new();
    let mut opaque = BTreeSet::new();
    let mut entries = 0u64;
    for entry in archive.entries()? {
        let mut entry = entry?;
        entries += 1;
        if entries > limits.max_entries_per_layer {
            return Err(ScanError::limit(format!("a layer has more than {} entries", limits.max_entries_per_layer)));
        }
        let Some(path) = normalize(&entry.path_bytes()) else { continue };
        let (dir, base) = match path.rsplit_once('/') {
            Some((dir, base)) => (dir, base),
            None => ("", path.as_str()),
        };
        if base == OPAQUE {
            opaque.insert(dir.to_owned());
            continue;
        }
        if let Some(name) = base.strip_prefix(WHITEOUT_PREFIX) {
            if !name.is_empty() && name != "." && name != ".." {
                deleted.insert(join(dir, name));
            }
            continue;
        }
        // Any entry at a kept path of a lower layer hides it, whatever this
        // layer puts there (a different file, a link, a directory).
        if files.contains_key(&path) {
            deleted.insert(path.clone());
        }
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            if inventory::wants(&path)
                && let Some(target) = entry.link_name_bytes().and_then(|t| normalize(&t))
                && let Some(data) = added.get(&target).or_else(|| files.get(&target))
            {
                let data = data.clone();
                added.insert(path, data);
            }
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        let size = entry.size();
        if inventory::wants(&path) {
            if size > limits.max_file_bytes {
                continue;
            }
            let mut data = Vec::with_capacity(size.min(1024 * 1024) as usize);
            (&mut entry).take(limits.max_file_bytes).read_to_end(&mut data)?;
            added.insert(path, FileData::Bytes(data));
        } else if entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0)
            && size >= 4
            && size <= limits.max_go_binary_bytes
        {
            let mut magic = [0u8; 4];
            entry.read_exact(&mut magic)?;
            if magic != *b"\x7fELF" {
                continue;
            }
            let mut data = Vec::with_capacity(size as usize);
            data.extend_from_slice(&magic);
            (&mut entry).take(limits.max_go_binary_bytes).read_to_end(&mut data)?;
            if let Some(info) = inventory::golang::build_info(&data) {
                added.insert(path, FileData::Go(info));
            }
        }
    }
    files.retain(|path, _| !hidden(path, &deleted, &opaque));
    files.append(&mut added);
    Ok(())
}

/// Whether a lower layer's path is deleted by a whiteout of this layer or
/// sits below one of its opaque directories.
fn hidden(path: &str, deleted: &BTreeSet<String>, opaque: &BTreeSet<String>) -> bool {
    if deleted.contains(path) || opaque.contains("") {
        return true;
    }
    let mut rest = path;
    while let Some((parent, _)) = rest.rsplit_once('/') {
        if deleted.contains(parent) || opaque.contains(parent) {
            return true;
        }
        rest = parent;
    }
    false
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") }
}

/// A tar path made relative to the image root: no leading `/`, no `.` or
/// empty components, `..` resolved lexically. `None` if it leaves the root
/// or names the root itself.
pub(crate) fn normalize(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() { None } else { Some(parts.join("/")) }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    /// A tar in memory; `(path, contents)` with a contents of `None` makes a
    /// directory, paths are written raw so tests may put `..` in them.
    pub fn tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            set_raw_path(&mut header, path);
            match data {
                Some(data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(data.len() as u64);
                    header.set_mode(0o644);
                    header.set_cksum();
                    builder.append(&header, *data).unwrap();
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(0o755);
                    header.set_cksum();
                    builder.append(&header, io::empty()).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    pub fn set_raw_path(header: &mut tar::Header, path: &str) {
        let name = &mut header.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
    }

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn layer(media_type: &str, data: Vec<u8>) -> Layer<io::Cursor<Vec<u8>>> {
        Layer::new(media_type, io::Cursor::new(data))
    }

    fn paths(files: &Files) -> Vec<&str> {
        files.keys().map(String::as_str).collect()
    }

    const STATUS: &str = "var/lib/dpkg/status";

    #[test]
    fn normalizes_paths_lexically() {
        assert_eq!(normalize(b"./etc//os-release").as_deref(), Some("etc/os-release"));
        assert_eq!(normalize(b"/usr/lib/../lib/os-release").as_deref(), Some("usr/lib/os-release"));
        assert_eq!(normalize(b"../etc/passwd"), None);
        assert_eq!(normalize(b"a/../../etc/passwd"), None);
        assert_eq!(normalize(b"./"), None);
    }

    #[test]
    fn keeps_only_wanted_files_from_plain_and_gzipped_tar() {
        let one = tar(&[(STATUS, Some(b"one")), ("etc/hostname", Some(b"x")), ("etc/", None)]);
        let two = gzip(&tar(&[("./etc/os-release", Some(b"ID=debian\n"))]));
        let files = collect([layer(TAR, one), layer(TAR_GZIP, two)], &Limits::default()).unwrap();
        assert_eq!(paths(&files), ["etc/os-release", STATUS]);
        // A gzipped layer labelled as plain tar is still read.
        let files = collect([layer(TAR, gzip(&tar(&[(STATUS, Some(b"x"))])))], &Limits::default()).unwrap();
        assert_eq!(paths(&files), [STATUS]);
    }

    #[test]
    fn upper_layers_replace_and_whiteouts_delete() {
        let base = tar(&[
            (STATUS, Some(b"base")),
            ("lib/apk/db/installed", Some(b"apk")),
            ("app/node_modules/a/package.json", Some(b"{}")),
            ("app/node_modules/b/package.json", Some(b"{}")),
        ]);
        let upper = tar(&[
            (STATUS, Some(b"upper")),
            ("lib/apk/db/.wh.installed", Some(b"")),
            ("app/node_modules/.wh..wh..opq", Some(b"")),
            ("app/node_modules/c/package.json", Some(b"{}")),
        ]);
        let files = collect([layer(TAR, base), layer(TAR, upper)], &Limits::default()).unwrap();
        assert_eq!(paths(&files), ["app/node_modules/c/package.json", STATUS]);
        assert_eq!(files[STATUS], FileData::Bytes(b"upper".to_vec()));
    }

    #[test]
    fn a_whiteout_of_a_directory_deletes_all_below_it() {
        let base = tar(&[("usr/lib/python3/site-packages/a-1.dist-info/METADATA", Some(b"Name: a"))]);
        let upper = tar(&[("usr/lib/python3/.wh.site-packages", Some(b""))]);
        let files = collect([layer(TAR, base), layer(TAR, upper)], &Limits::default()).unwrap();
        assert!(files.is_empty());
    }

    #[test]
    fn entries_leaving_the_root_are_ignored() {
        let layer_tar = tar(&[("../../var/lib/dpkg/status", Some(b"evil")), ("a/../../etc/os-release", Some(b"x"))]);
        let files = collect([layer(TAR, layer_tar)], &Limits::default()).unwrap();
        assert!(files.is_empty());
    }

    #[test]
    fn links_are_not_followed_out_of_the_image() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, STATUS, "/etc/shadow").unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        builder.append_link(&mut header, "etc/os-release", "../../../etc/os-release").unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(10);
        header.set_mode(0o644);
        builder.append_data(&mut header, "usr/lib/os-release", &b"ID=alpine\n"[..]).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        builder.append_link(&mut header, "etc/alpine-release", "usr/lib/os-release").unwrap();
        let data = builder.into_inner().unwrap();
        let files = collect([layer(TAR, data)], &Limits::default()).unwrap();
        assert_eq!(paths(&files), ["etc/alpine-release", "usr/lib/os-release"]);
    }

    #[test]
    fn zstd_and_unknown_media_types_are_unsupported() {
        for media_type in ["application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.config.v1+json"] {
            let error = collect([layer(media_type, tar(&[]))], &Limits::default()).unwrap_err();
            assert!(matches!(error, ScanError::Unsupported { .. }), "{error}");
        }
        let zstd = vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0];
        let error = collect([layer(TAR, zstd)], &Limits::default()).unwrap_err();
        assert!(matches!(error, ScanError::Unsupported { .. }), "{error}");
    }

    #[test]
    fn too_many_layers_or_entries_is_a_limit() {
        let limits = Limits { max_layers: 2, max_entries_per_layer: 3, ..Limits::default() };
        let layers = (0..3).map(|_| layer(TAR, tar(&[])));
        assert!(matches!(collect(layers, &limits), Err(ScanError::LimitExceeded { .. })));
        let many: Vec<(String, Option<&[u8]>)> = (0..10).map(|i| (format!("f{i}"), Some(&b""[..]))).collect();
        let many: Vec<(&str, Option<&[u8]>)> = many.iter().map(|(p, d)| (p.as_str(), *d)).collect();
        let error = collect([layer(TAR, tar(&many))], &limits).unwrap_err();
        assert!(matches!(error, ScanError::LimitExceeded { .. }), "{error}");
    }

    #[test]
    fn oversized_files_are_skipped_not_read() {
        let limits = Limits { max_file_bytes: 8, ..Limits::default() };
        let data = tar(&[(STATUS, Some(b"more than eight bytes")), ("etc/os-release", Some(b"ID=x"))]);
        let files = collect([layer(TAR, data)], &limits).unwrap();
        assert_eq!(paths(&files), ["etc/os-release"]);
    }

    /// Gzip members of 64 MiB of zeros each, repeated: gigabytes once
    /// decompressed, a few MiB in memory.
    struct Repeat {
        member: Vec<u8>,
        times: usize,
        at: usize,
    }

    impl Read for Repeat {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.times == 0 {
                return Ok(0);
            }
            let n = (self.member.len() - self.at).min(buf.len());
            buf[..n].copy_from_slice(&self.member[self.at..self.at + n]);
            self.at += n;
            if self.at == self.member.len() {
                self.at = 0;
                self.times -= 1;
            }
            Ok(n)
        }
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_layer_limit_quickly() {
        // A tar header announcing a 4 GiB file, then 4 GiB of zeros.
        let mut header = tar::Header::new_gnu();
        header.set_path("bomb").unwrap();
        header.set_size(4 << 30);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_cksum();
        let zeros = vec![0u8; 64 << 20];
        let head = gzip(header.as_bytes());
        let member = gzip(&zeros);
        assert!(member.len() < 1 << 20);
        let stream = io::Cursor::new(head).chain(Repeat { member, times: 64, at: 0 });
        let limits = Limits { max_layer_bytes: 256 << 20, ..Limits::default() };
        let started = std::time::Instant::now();
        let error = collect([Layer::new(TAR_GZIP, stream)], &limits).unwrap_err();
        assert!(matches!(error, ScanError::LimitExceeded { .. }), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        // The total bound holds across layers too.
        let limits = Limits { max_total_bytes: 10_000, ..Limits::default() };
        let big = tar(&[("f", Some(&[7u8; 6000][..]))]);
        let error = collect([layer(TAR, big.clone()), layer(TAR, big)], &limits).unwrap_err();
        assert!(matches!(error, ScanError::LimitExceeded { .. }), "{error}");
    }

    #[test]
    fn truncated_streams_and_absurd_sizes_are_malformed() {
        let data = gzip(&tar(&[(STATUS, Some(&[b'x'; 5000][..]))]));
        let error = collect([layer(TAR_GZIP, data[..data.len() / 2].to_vec())], &Limits::default()).unwrap_err();
        assert!(matches!(error, ScanError::Malformed { .. }), "{error}");
        // A header claiming an absurd size, with nothing behind it.
        let mut header = tar::Header::new_gnu();
        header.set_path(STATUS).unwrap();
        header.set_size(u64::MAX / 2);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let result = collect([layer(TAR, header.as_bytes().to_vec())], &Limits::default());
        assert!(matches!(result, Ok(ref f) if f.is_empty()) || matches!(result, Err(ScanError::Malformed { .. })));
        // Random bytes are not a tar.
        let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let result = collect([layer(TAR, noise)], &Limits::default());
        assert!(matches!(result, Ok(_) | Err(ScanError::Malformed { .. })));
    }
}
