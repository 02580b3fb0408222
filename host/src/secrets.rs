//! Secrets at rest: client secrets, refresh tokens and cached access tokens are
//! stored sealed with XChaCha20-Poly1305 under a key that never enters the
//! database: from `GOALS_HOST_SECRET_KEY` or a key file beside the database,
//! created readable by its owner only.
//!
//! Each value is bound to where it is stored (the associated data), so a sealed
//! value copied to another row does not open there.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use std::path::{Path, PathBuf};

/// Environment variable holding the key as 64 hex digits; it wins over the file.
pub const KEY_ENV: &str = "GOALS_HOST_SECRET_KEY";

/// Environment variable naming a key file to use instead of the data
/// directory's: one file (or secret) several hosts are given.
pub const KEY_FILE_ENV: &str = "GOALS_HOST_SECRET_KEY_FILE";

/// The key file the command line or the configuration file names, which
/// then stands where `GOALS_HOST_SECRET_KEY_FILE` would.
static NAMED_KEY_FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Names the key file for every later [`Keyring::load`] of this process; set
/// once, at start.
pub fn use_key_file(path: std::path::PathBuf) {
    let _ = NAMED_KEY_FILE.set(path);
}

/// The key file in the data directory.
pub const KEY_FILE: &str = "secret.key";

/// Marks a sealed value and the format it is in.
const PREFIX: &[u8] = b"gh1.";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "cannot read or create the key file {path}: {source}; make it readable (and its \
         directory writable) by the user running goals-host, or give the key in {KEY_ENV}"
    )]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file holds something that is not a key. Not the lost-key case (a
    /// valid but different key, after which connections need sign-in): nothing
    /// is guessed here, the operator restores the file.
    #[error(
        "the key file {path} does not hold a secret key (64 hexadecimal digits); restore it \
         from a backup or give the key in {KEY_ENV}. Deleting the file makes a new key, and \
         every connection must then be signed in again"
    )]
    BadKeyFile { path: PathBuf },
    #[error(
        "{KEY_ENV} is set but does not hold a secret key (64 hexadecimal digits); set it to \
         the host's key, or unset it to use the key file in the data directory"
    )]
    BadKeyEnv,
    #[error("the system's random number generator failed")]
    Random,
    #[error("a stored secret cannot be opened with this host's key")]
    Undecryptable,
}

/// The key sealing and opening stored secrets.
pub struct Keyring {
    cipher: XChaCha20Poly1305,
    /// Where the key came from, for messages about secrets it cannot open.
    source: String,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(***)")
    }
}

fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| SecretError::Random)?;
    Ok(bytes)
}

/// The key in `text` (64 hex digits, surrounding whitespace ignored).
fn parse_key(text: &[u8]) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(text).ok()?;
    hex::decode(text.trim()).ok()?.try_into().ok()
}

impl Keyring {
    pub fn from_key(key: [u8; 32]) -> Keyring {
        Self::with_source(key, "a key given by the caller".to_string())
    }

    fn with_source(key: [u8; 32], source: String) -> Keyring {
        Keyring {
            cipher: XChaCha20Poly1305::new(&Key::from(key)),
            source,
        }
    }

    /// Where the key came from: the environment variable or the key file.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// A key that lives only as long as the process (in-memory databases).
    pub fn ephemeral() -> Result<Keyring, SecretError> {
        Ok(Self::with_source(random()?, "an in-memory key".to_string()))
    }

    /// The key from the environment, else from the key file it names, else from
    /// the data directory's key file, which is created (owner-only) on first use. A key that cannot be read is an
    /// error naming where it came from; a readable but different key is not
    /// detected here (connections whose secrets it cannot open need sign-in).
    pub fn load(data_dir: &Path) -> Result<Keyring, SecretError> {
        if let Some(text) = std::env::var_os(KEY_ENV) {
            let key = parse_key(text.as_encoded_bytes()).ok_or(SecretError::BadKeyEnv)?;
            return Ok(Self::with_source(
                key,
                format!("the environment variable {KEY_ENV}"),
            ));
        }
        let named = NAMED_KEY_FILE
            .get()
            .cloned()
            .or_else(|| std::env::var_os(KEY_FILE_ENV).map(std::path::PathBuf::from));
        if let Some(path) = named {
            let text = std::fs::read(&path).map_err(|source| SecretError::KeyFile {
                path: path.clone(),
                source,
            })?;
            return parse_key(&text)
                .map(|key| Self::with_source(key, format!("the key file {}", path.display())))
                .ok_or(SecretError::BadKeyFile { path });
        }
        let path = data_dir.join(KEY_FILE);
        let file_error = |source| SecretError::KeyFile {
            path: path.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(text) => parse_key(&text)
                .map(|key| Self::with_source(key, format!("the key file {}", path.display())))
                .ok_or_else(|| SecretError::BadKeyFile { path: path.clone() }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = random()?;
                write_owner_only(&path, format!("{}\n", hex::encode(key)).as_bytes())
                    .map_err(file_error)?;
                Ok(Self::with_source(
                    key,
                    format!("the key file {} (new: none was there)", path.display()),
                ))
            }
            Err(error) => Err(file_error(error)),
        }
    }

    /// [`Keyring::load`] that never creates the key file (a read-only data
    /// directory): without a key, stored secrets simply cannot be opened.
    pub fn load_existing(data_dir: &Path) -> Result<Keyring, SecretError> {
        let named = NAMED_KEY_FILE.get().is_some() || std::env::var_os(KEY_FILE_ENV).is_some();
        if named || std::env::var_os(KEY_ENV).is_some() || data_dir.join(KEY_FILE).exists() {
            return Self::load(data_dir);
        }
        Ok(Self::with_source(
            random()?,
            format!(
                "no key: the read-only data directory {} has no {KEY_FILE}",
                data_dir.display()
            ),
        ))
    }

    /// Seals `plaintext` for the place `context` names.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
        let nonce: [u8; NONCE_LEN] = random()?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        let mut out = Vec::with_capacity(PREFIX.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(PREFIX);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Keyring::seal`] sealed for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        let body = sealed
            .strip_prefix(PREFIX)
            .ok_or(SecretError::Undecryptable)?;
        if body.len() < NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Undecryptable)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Undecryptable)
    }

    /// Text form of a sealed value, for TEXT columns.
    pub fn seal_text(&self, context: &str, plaintext: &str) -> Result<String, SecretError> {
        let sealed = self.seal(context, plaintext.as_bytes())?;
        let (prefix, body) = sealed.split_at(PREFIX.len());
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(prefix),
            hex::encode(body)
        ))
    }

    pub fn open_text(&self, context: &str, sealed: &str) -> Result<String, SecretError> {
        let body = sealed
            .strip_prefix("gh1.")
            .ok_or(SecretError::Undecryptable)?;
        let mut bytes = PREFIX.to_vec();
        bytes.extend(hex::decode(body).map_err(|_| SecretError::Undecryptable)?);
        let plaintext = self.open(context, &bytes)?;
        String::from_utf8(plaintext).map_err(|_| SecretError::Undecryptable)
    }

    /// Whether a stored value is already sealed (older databases stored plaintext).
    pub fn is_sealed(value: &[u8]) -> bool {
        value.starts_with(PREFIX)
    }
}

#[cfg(unix)]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_place_and_with_their_key() {
        let keyring = Keyring::ephemeral().unwrap();
        let sealed = keyring.seal("connection:1", b"s3cret").unwrap();
        assert!(Keyring::is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(keyring.open("connection:1", &sealed).unwrap(), b"s3cret");
        assert!(
            keyring.open("connection:2", &sealed).is_err(),
            "bound to its place"
        );
        let other = Keyring::ephemeral().unwrap();
        assert!(
            other.open("connection:1", &sealed).is_err(),
            "bound to its key"
        );
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(keyring.open("connection:1", &tampered).is_err());
        assert!(keyring.open("connection:1", b"plain").is_err());
    }

    #[test]
    fn text_form_round_trips() {
        let keyring = Keyring::ephemeral().unwrap();
        let sealed = keyring.seal_text("c", "pa$$ word").unwrap();
        assert!(sealed.starts_with("gh1."));
        assert_eq!(keyring.open_text("c", &sealed).unwrap(), "pa$$ word");
    }

    #[test]
    fn the_key_file_is_created_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keyring::load(dir.path()).unwrap();
        let sealed = first.seal("x", b"v").unwrap();
        let again = Keyring::load(dir.path()).unwrap();
        assert_eq!(again.open("x", &sealed).unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_unreadable_key_file_is_an_error_naming_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let garbled: [&[u8]; 4] = [b"not hex", b"00112233", &[0xff, 0xfe, 0x00], b""];
        for garbled in garbled {
            std::fs::write(&path, garbled).unwrap();
            let error = Keyring::load(dir.path()).unwrap_err();
            assert!(
                matches!(&error, SecretError::BadKeyFile { path: p } if *p == path),
                "{error:?}"
            );
            let message = error.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("restore it"), "{message}");
            assert!(message.contains(KEY_ENV), "{message}");
        }
        // Never replaced behind the operator's back.
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        std::fs::write(&path, format!("  {}\n\n", "ab".repeat(32))).unwrap();
        assert!(Keyring::load(dir.path()).is_ok(), "whitespace is ignored");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_that_cannot_be_read_says_so() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading it fails on every system,
        // whoever runs the test.
        std::fs::create_dir(dir.path().join(KEY_FILE)).unwrap();
        let error = Keyring::load(dir.path()).unwrap_err();
        assert!(matches!(error, SecretError::KeyFile { .. }), "{error:?}");
        assert!(error.to_string().contains(KEY_FILE), "{error}");
    }
}
