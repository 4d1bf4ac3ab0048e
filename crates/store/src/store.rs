//! [`Store`]: one API over the local-disk and S3 backends.
//!
//! Writes are create-only and all-or-nothing: an upload is hashed and counted
//! while it streams, and it becomes visible under its key only once every byte
//! is in and the key is still free. How each backend makes that true is in
//! `docs/storage.md`; the short version:
//! - objects up to [`PART_SIZE`] go up in one conditional put: a hard link on
//!   disk (atomic), `If-None-Match: *` on S3 (atomic on AWS and MinIO, not on
//!   every server: s3s-fs checks and then writes);
//! - larger objects on disk are written to `.staging/` and hard-linked into
//!   place (atomic, create-only); on S3 they go up as a multipart upload that
//!   is completed only if the key is still free just before completion, and
//!   aborted otherwise (object_store cannot make the completion itself
//!   conditional);
//! - every put first checks that the key is free, so servers that ignore
//!   `If-None-Match` (Garage) still refuse a second write to a key.

use std::convert::Infallible;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::signer::Signer;
use object_store::{
    CopyMode, CopyOptions, GetOptions, ObjectMeta, ObjectStore, PutMode, PutMultipartOptions,
    PutOptions, PutPayload, WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use crate::config::S3Config;
use crate::error::{Error, Result};
use crate::key::ObjectKey;

/// Size of one multipart part, and the largest object written in a single put.
/// S3 wants parts of at least 5 MiB and at most 10,000 of them, so the largest
/// object is 80 GB.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts uploaded at once by one upload. With the part being filled, one
/// upload holds at most `(PARTS_IN_FLIGHT + 1) * PART_SIZE` bytes in memory.
const PARTS_IN_FLIGHT: usize = 2;

/// Chunk size when reading a local file for `put_file`.
const FILE_CHUNK: usize = 256 * 1024;

/// Where the local backend writes large uploads before linking them into
/// place. No [`ObjectKey`] can name it (segments start with a letter or digit).
const STAGING: &str = ".staging";

/// A stored object: its key, size and SHA-256, as measured while the bytes
/// streamed through this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
}

impl ObjectInfo {
    /// The SHA-256 as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// An object as the backend describes it (from `head` or `list`): no digest,
/// since computing one means reading the object (see [`Store::rehash`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The key.
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
}

/// An object being read: its size, known before the first byte, and its content.
pub struct Download {
    /// Size in bytes, from the backend.
    pub size: u64,
    /// The content, in chunks.
    pub chunks: BoxStream<'static, Result<Bytes>>,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// The object store: uploads, bundles and artifacts, on local disk or in an
/// S3-compatible bucket. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Backend>,
}

enum Backend {
    Local {
        fs: LocalFileSystem,
        dir: PathBuf,
    },
    S3 {
        s3: AmazonS3,
        endpoint: Url,
        bucket: String,
    },
}

// Written by hand: object_store's clients print their credentials in `Debug`.
impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Backend::Local { dir, .. } => f.debug_struct("Store").field("local", dir).finish(),
            Backend::S3 {
                endpoint, bucket, ..
            } => f
                .debug_struct("Store")
                .field("s3", &endpoint.as_str())
                .field("bucket", bucket)
                .finish(),
        }
    }
}

impl Store {
    /// A store in the directory `dir` (created if missing): the embedded default.
    pub fn local(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|source| Error::Backend {
            op: "open",
            key: dir.display().to_string(),
            source,
        })?;
        Ok(Self {
            inner: Arc::new(Backend::Local {
                fs,
                dir: dir.to_path_buf(),
            }),
        })
    }

    /// A store in an S3-compatible bucket, addressed path-style. Nothing is
    /// sent until the first operation.
    pub fn s3(config: S3Config) -> Result<Self> {
        let endpoint = config.endpoint;
        match endpoint.scheme() {
            "https" => {}
            "http" if config.allow_http => {}
            "http" => {
                return Err(Error::Config(format!(
                    "the S3 endpoint {endpoint} is plain http; set allow_http only for a test server"
                )));
            }
            other => {
                return Err(Error::Config(format!(
                    "the S3 endpoint must be an http(s) URL, not {other}:"
                )));
            }
        }
        // Credentials belong in access_key_id and the secret, never in a URL
        // that ends up in logs and error messages.
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(Error::Config(
                "the S3 endpoint URL must not carry credentials".into(),
            ));
        }
        let s3 = AmazonS3Builder::new()
            .with_endpoint(endpoint.as_str().trim_end_matches('/'))
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose())
            .with_allow_http(config.allow_http)
            .with_virtual_hosted_style_request(false)
            .build()
            .map_err(|err| {
                Error::Config(format!(
                    "cannot set up the S3 client for bucket {}: {err}",
                    config.bucket
                ))
            })?;
        Ok(Self {
            inner: Arc::new(Backend::S3 {
                s3,
                endpoint,
                bucket: config.bucket,
            }),
        })
    }

    /// `"local"` or `"s3"`.
    pub fn kind(&self) -> &'static str {
        match &*self.inner {
            Backend::Local { .. } => "local",
            Backend::S3 { .. } => "s3",
        }
    }

    fn os(&self) -> &dyn ObjectStore {
        match &*self.inner {
            Backend::Local { fs, .. } => fs,
            Backend::S3 { s3, .. } => s3,
        }
    }

    // ----- writing ----------------------------------------------------------

    /// Stores the chunks of `stream` under `key`, hashing them on the way.
    ///
    /// Refuses with `store.exists` if `key` is taken (before reading the
    /// stream, and again before the object becomes visible), with
    /// `store.too_large` as soon as more than `max_bytes` arrive, and with
    /// `store.upload_interrupted` if the stream fails. In every refusal nothing
    /// is stored and any upload in progress is aborted.
    pub async fn put_stream<S, E>(
        &self,
        key: &ObjectKey,
        stream: S,
        max_bytes: u64,
    ) -> Result<ObjectInfo>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // Refuse before reading any of the upload. Not the only check: a
        // concurrent writer is caught by the conditional write below.
        if self.exists(key).await? {
            return Err(Error::Exists {
                key: key.to_string(),
            });
        }
        let mut stream = pin!(stream);
        let mut tally = Tally::new(key, max_bytes);

        // Up to one part is held in memory: a small object is then one put.
        let mut first_part = Vec::new();
        let mut buffered = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = tally.take(chunk)?;
            if buffered.saturating_add(chunk.len()) > PART_SIZE {
                let parts = first_part.into_iter().chain([chunk]);
                self.put_multipart(key, parts, stream, &mut tally).await?;
                return Ok(tally.finish());
            }
            buffered += chunk.len();
            first_part.push(chunk);
        }
        let payload: PutPayload = first_part.into_iter().collect();
        self.os()
            .put_opts(&key.to_path(), payload, PutOptions::from(PutMode::Create))
            .await
            .map_err(|err| Error::backend("put", key, err))?;
        Ok(tally.finish())
    }

    /// The large-object path of [`Self::put_stream`]: `buffered` holds the
    /// chunks already read (more than one part), `rest` the remainder.
    async fn put_multipart<S, E>(
        &self,
        key: &ObjectKey,
        buffered: impl Iterator<Item = Bytes>,
        mut rest: std::pin::Pin<&mut S>,
        tally: &mut Tally<'_>,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // On disk, the upload goes to a staging name and is linked into place
        // afterwards, since a completed local multipart upload replaces
        // whatever is at its path. On S3 an incomplete upload is invisible, so
        // it targets the key itself.
        let target = match &*self.inner {
            Backend::Local { .. } => staging_path(),
            Backend::S3 { .. } => key.to_path(),
        };
        let upload = self
            .os()
            .put_multipart_opts(&target, PutMultipartOptions::default())
            .await
            .map_err(|err| Error::backend("put", key, err))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        for chunk in buffered {
            writer.put(chunk);
        }
        let fed = feed(&mut writer, key, rest.as_mut(), tally).await;
        let still_free = match fed {
            Ok(()) => self.exists(key).await.map(|taken| !taken),
            Err(err) => Err(err),
        };
        match still_free {
            Ok(true) => {}
            Ok(false) => {
                abort(writer).await;
                return Err(Error::Exists {
                    key: key.to_string(),
                });
            }
            Err(err) => {
                abort(writer).await;
                return Err(err);
            }
        }
        // `finish` aborts the upload itself when completion fails.
        writer
            .finish()
            .await
            .map_err(|err| Error::backend("put", key, err))?;
        match &*self.inner {
            Backend::Local { .. } => self.commit_staged(&target, key).await,
            Backend::S3 { .. } => Ok(()),
        }
    }

    /// Links a completed staging file to `key` if, and only if, `key` is free
    /// (a hard link fails on an existing name), then removes the staging name.
    async fn commit_staged(&self, staged: &StorePath, key: &ObjectKey) -> Result<()> {
        let linked = self
            .os()
            .copy_opts(
                staged,
                &key.to_path(),
                CopyOptions::new().with_mode(CopyMode::Create),
            )
            .await;
        // The staging name goes whether or not the link succeeded. If removing
        // it fails the object is still stored correctly, and the leftover file
        // is invisible to `list` (see docs/storage.md).
        let _ = self.delete_path(staged).await;
        linked.map_err(|err| Error::backend("put", key, err))
    }

    /// Stores `bytes` under `key`; see [`Self::put_stream`].
    pub async fn put_bytes(
        &self,
        key: &ObjectKey,
        bytes: impl Into<Bytes>,
        max_bytes: u64,
    ) -> Result<ObjectInfo> {
        let chunk: Bytes = bytes.into();
        self.put_stream(key, stream::iter([Ok::<_, Infallible>(chunk)]), max_bytes)
            .await
    }

    /// Stores the content of the local file `path` under `key`; see
    /// [`Self::put_stream`].
    pub async fn put_file(
        &self,
        key: &ObjectKey,
        path: impl AsRef<Path>,
        max_bytes: u64,
    ) -> Result<ObjectInfo> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        // Refuse an obviously oversized file before uploading any of it; the
        // streaming count still applies if the file grows meanwhile.
        if file.metadata().await.map_err(io)?.len() > max_bytes {
            return Err(Error::TooLarge {
                key: key.to_string(),
                limit: max_bytes,
            });
        }
        let chunks = stream::try_unfold(file, |mut file| async move {
            let mut buf = BytesMut::with_capacity(FILE_CHUNK);
            let read = file.read_buf(&mut buf).await?;
            std::io::Result::Ok((read > 0).then(|| (buf.freeze(), file)))
        });
        self.put_stream(key, chunks, max_bytes).await
    }

    // ----- reading ----------------------------------------------------------

    /// Opens `key` for reading.
    pub async fn get_stream(&self, key: &ObjectKey) -> Result<Download> {
        let got = self
            .os()
            .get_opts(&key.to_path(), GetOptions::default())
            .await
            .map_err(|err| Error::backend("get", key, err))?;
        let size = got.meta.size;
        let key = key.clone();
        let chunks = got
            .into_stream()
            .map_err(move |err| Error::backend("get", &key, err))
            .boxed();
        Ok(Download { size, chunks })
    }

    /// Reads all of `key` into memory, refusing objects over `max_bytes`.
    pub async fn get_bytes(&self, key: &ObjectKey, max_bytes: u64) -> Result<Bytes> {
        let too_large = || Error::TooLarge {
            key: key.to_string(),
            limit: max_bytes,
        };
        let Download { size, mut chunks } = self.get_stream(key).await?;
        if size > max_bytes {
            return Err(too_large());
        }
        let mut out = BytesMut::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            // The object may have been replaced out of band since `size` was read.
            if (out.len() as u64).saturating_add(chunk.len() as u64) > max_bytes {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Copies `key` into the new local file `path` (which must not exist),
    /// checking that the size matches the object's; on any failure the partial
    /// file is removed.
    pub async fn download_to_file(
        &self,
        key: &ObjectKey,
        path: impl AsRef<Path>,
    ) -> Result<ObjectInfo> {
        let path = path.as_ref();
        let Download { size, mut chunks } = self.get_stream(key).await?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .await
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let written = write_chunks(file, path, &mut chunks, Tally::new(key, size)).await;
        let failure = match written {
            Ok(info) if info.size == size => return Ok(info),
            Ok(info) => Error::SizeMismatch {
                key: key.to_string(),
                expected: size,
                actual: info.size,
            },
            // More bytes than announced shows up as the tally's limit.
            Err(Error::TooLarge { .. }) => Error::SizeMismatch {
                key: key.to_string(),
                expected: size,
                actual: size.saturating_add(1),
            },
            Err(err) => err,
        };
        let _ = tokio::fs::remove_file(path).await;
        Err(failure)
    }

    /// Reads `key` and recomputes its size and SHA-256, for integrity checks
    /// against signed attestations.
    pub async fn rehash(&self, key: &ObjectKey) -> Result<ObjectInfo> {
        let Download { mut chunks, .. } = self.get_stream(key).await?;
        let mut tally = Tally::new(key, u64::MAX);
        while let Some(chunk) = chunks.next().await {
            tally.take(Ok::<_, Infallible>(chunk?))?;
        }
        Ok(tally.finish())
    }

    /// Size of `key`, or `store.not_found`.
    pub async fn head(&self, key: &ObjectKey) -> Result<ObjectEntry> {
        let meta = self
            .os()
            .get_opts(&key.to_path(), GetOptions::new().with_head(true))
            .await
            .map_err(|err| Error::backend("head", key, err))?
            .meta;
        Ok(ObjectEntry {
            key: key.clone(),
            size: meta.size,
        })
    }

    /// Whether an object is stored under `key`.
    pub async fn exists(&self, key: &ObjectKey) -> Result<bool> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The objects under `prefix` (whole segments: `jobs/1` does not match
    /// `jobs/10/x`), or all objects, sorted by key. Names in the store that are
    /// not valid keys (the local backend's staging area, foreign files) are
    /// left out.
    pub async fn list(&self, prefix: Option<&ObjectKey>) -> Result<Vec<ObjectEntry>> {
        let path = prefix.map(ObjectKey::to_path);
        let what = prefix.map_or_else(String::new, ObjectKey::to_string);
        let metas: Vec<ObjectMeta> = self
            .os()
            .list(path.as_ref())
            .try_collect()
            .await
            .map_err(|err| Error::backend("list", &what, err))?;
        let mut entries: Vec<ObjectEntry> = metas
            .into_iter()
            .filter_map(|meta| {
                let key = ObjectKey::new(meta.location.as_ref()).ok()?;
                Some(ObjectEntry {
                    key,
                    size: meta.size,
                })
            })
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// Removes `key`. Removing a missing object succeeds, so cleanup can be
    /// retried.
    pub async fn delete(&self, key: &ObjectKey) -> Result<()> {
        match self.delete_path(&key.to_path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(Error::backend("delete", key, err)),
        }
    }

    async fn delete_path(&self, path: &StorePath) -> object_store::Result<()> {
        let once = stream::iter([Ok(path.clone())]).boxed();
        let mut deleted = self.os().delete_stream(once);
        while let Some(result) = deleted.next().await {
            result?;
        }
        Ok(())
    }

    /// A URL that fetches `key` with a plain GET until `ttl` has passed, for
    /// S3; `None` for the local backend, whose objects are served through the
    /// API. The URL is a bearer credential for that one object.
    pub async fn presigned_get_url(&self, key: &ObjectKey, ttl: Duration) -> Result<Option<Url>> {
        match &*self.inner {
            Backend::Local { .. } => Ok(None),
            Backend::S3 { s3, .. } => s3
                .signed_url(http::Method::GET, &key.to_path(), ttl)
                .await
                .map(Some)
                .map_err(|err| Error::backend("presign", key, err)),
        }
    }
}

/// Counts and hashes the bytes of one object, enforcing its size limit.
struct Tally<'a> {
    key: &'a ObjectKey,
    limit: u64,
    size: u64,
    hasher: Sha256,
}

impl<'a> Tally<'a> {
    fn new(key: &'a ObjectKey, limit: u64) -> Self {
        Self {
            key,
            limit,
            size: 0,
            hasher: Sha256::new(),
        }
    }

    fn take<E>(&mut self, chunk: std::result::Result<Bytes, E>) -> Result<Bytes>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let chunk = chunk.map_err(|err| Error::Source {
            key: self.key.to_string(),
            source: err.into(),
        })?;
        self.size = self.size.saturating_add(chunk.len() as u64);
        if self.size > self.limit {
            return Err(Error::TooLarge {
                key: self.key.to_string(),
                limit: self.limit,
            });
        }
        self.hasher.update(&chunk);
        Ok(chunk)
    }

    fn finish(self) -> ObjectInfo {
        ObjectInfo {
            key: self.key.clone(),
            size: self.size,
            sha256: self.hasher.finalize().into(),
        }
    }
}

/// Feeds the rest of an upload into the multipart writer, a bounded number
/// of parts in flight.
async fn feed<S, E>(
    writer: &mut WriteMultipart,
    key: &ObjectKey,
    mut rest: std::pin::Pin<&mut S>,
    tally: &mut Tally<'_>,
) -> Result<()>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    while let Some(chunk) = rest.next().await {
        let chunk = tally.take(chunk)?;
        writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(|err| Error::backend("put", key, err))?;
        writer.put(chunk);
    }
    Ok(())
}

/// Aborts a multipart upload after a refusal. The refusal is what the caller
/// needs to see; if the abort itself fails, the parts left on S3 are removed
/// by the bucket's lifecycle rule for incomplete uploads (docs/storage.md).
async fn abort(writer: WriteMultipart) {
    let _ = writer.abort().await;
}

async fn write_chunks(
    mut file: tokio::fs::File,
    path: &Path,
    chunks: &mut BoxStream<'static, Result<Bytes>>,
    mut tally: Tally<'_>,
) -> Result<ObjectInfo> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    while let Some(chunk) = chunks.next().await {
        let chunk = tally.take(Ok::<_, Infallible>(chunk?))?;
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    Ok(tally.finish())
}

/// A fresh name in the local backend's staging area.
fn staging_path() -> StorePath {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    StorePath::from(format!("{STAGING}/{}-{nanos}-{n}.part", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn futures_are_send() {
        // The service runs these inside spawned tasks and axum handlers.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let key = ObjectKey::new("k").unwrap();
        assert_send(&store.put_bytes(&key, Bytes::new(), 1));
        assert_send(&store.put_file(&key, dir.path().join("f"), 1));
        assert_send(&store.get_stream(&key));
        assert_send(&store.get_bytes(&key, 1));
        assert_send(&store.download_to_file(&key, dir.path().join("g")));
        assert_send(&store.rehash(&key));
        assert_send(&store.list(None));
        assert_send(&store.delete(&key));
        assert_send(&store.presigned_get_url(&key, Duration::from_secs(1)));
        fn is_send_sync<T: Send + Sync + Clone>() {}
        is_send_sync::<Store>();
    }

    #[test]
    fn s3_config_is_checked() {
        let config = |endpoint: &str, allow_http| S3Config {
            endpoint: Url::parse(endpoint).unwrap(),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIA".into(),
            secret_access_key: crate::SecretString::new("very-secret-value"),
            allow_http,
        };
        let err = Store::s3(config("http://127.0.0.1:8014", false)).unwrap_err();
        assert_eq!(err.code(), "store.config");
        let err = Store::s3(config("ftp://127.0.0.1", true)).unwrap_err();
        assert_eq!(err.code(), "store.config");
        let err = Store::s3(config("https://user:pw@minio.example", false)).unwrap_err();
        assert_eq!(err.code(), "store.config");

        let store = Store::s3(config("http://127.0.0.1:8014", true)).unwrap();
        assert_eq!(store.kind(), "s3");
        let shown = format!("{store:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("127.0.0.1:8014"), "{shown}");
    }

    #[test]
    fn staging_names_are_unique_and_not_keys() {
        let a = staging_path();
        let b = staging_path();
        assert_ne!(a, b);
        assert!(ObjectKey::new(a.as_ref()).is_err());
    }
}
