//! Who may talk to the receiver: bearer tokens from a file (re-read on SIGHUP) and the TLS
//! server configuration (rustls, TLS 1.2 and 1.3).
//!
//! Tokens are kept only as SHA-256 digests. A presented token is hashed and compared with every
//! digest in constant time (no early exit, neither inside a digest nor across the list), so the
//! time an answer takes says nothing about how much of a token was right.

use super::LiveError;
use ring::digest::{SHA256, digest};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

type Digest = [u8; 32];

/// The accepted bearer tokens, as digests.
pub struct Tokens {
    path: PathBuf,
    digests: RwLock<Vec<Digest>>,
}

impl Tokens {
    /// Reads the token file: one token per line; blank lines and lines starting with `#` are
    /// ignored, as is the white space around a token. A file without any token is an error
    /// (it would lock everyone out).
    pub fn load(path: &Path) -> Result<Tokens, LiveError> {
        let digests = read(path)?;
        Ok(Tokens {
            path: path.to_path_buf(),
            digests: RwLock::new(digests),
        })
    }

    /// Reads the file again (SIGHUP). On an error the tokens in force stay in force.
    pub fn reload(&self) -> Result<usize, LiveError> {
        let fresh = read(&self.path)?;
        let n = fresh.len();
        *self.digests.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(n)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `presented` is one of the tokens, in time independent of which (if any) matched.
    pub fn check(&self, presented: &[u8]) -> bool {
        let p = sha256(presented);
        let digests = self.digests.read().unwrap_or_else(|e| e.into_inner());
        let mut any = 0u8;
        for d in digests.iter() {
            any |= ct_eq(d, &p) as u8;
        }
        std::hint::black_box(any) == 1
    }
}

fn read(path: &Path) -> Result<Vec<Digest>, LiveError> {
    let text = std::fs::read_to_string(path).map_err(LiveError::io(path, "read the token file"))?;
    let digests = parse(&text);
    if digests.is_empty() {
        return Err(LiveError::NoTokens {
            path: path.display().to_string(),
        });
    }
    Ok(digests)
}

fn parse(text: &str) -> Vec<Digest> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| sha256(l.as_bytes()))
        .collect()
}

/// Whether the token file can be read by other users (worth a warning at start).
pub fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

fn sha256(b: &[u8]) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, b).as_ref());
    out
}

/// Equality of two digests without an early exit.
fn ct_eq(a: &Digest, b: &Digest) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let t = rest.trim_ascii();
    (!t.is_empty()).then_some(t)
}

/// The rustls server configuration from PEM files: the certificate chain and its private key;
/// TLS 1.3 and 1.2 only, HTTP/1.1 by ALPN.
pub fn tls_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<tokio_rustls::rustls::ServerConfig>, LiveError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let tls_err = |path: &Path, cause: String| LiveError::Tls {
        path: path.display().to_string(),
        cause,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_err(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(tls_err(cert, "no PEM certificate in the file".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_err(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| tls_err(key, format!("does not fit the certificate: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_a_file_with_comments_and_blanks() {
        let d = parse("# operators\n\n  alpha  \n#beta\nbeta-2\n");
        assert_eq!(d.len(), 2);
        let t = Tokens {
            path: PathBuf::new(),
            digests: RwLock::new(d),
        };
        assert!(t.check(b"alpha"));
        assert!(t.check(b"beta-2"));
        assert!(!t.check(b"#beta"));
        assert!(!t.check(b"alph"));
        assert!(!t.check(b"alphaa"));
        assert!(!t.check(b""));
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearerabc"), None);
    }

    #[test]
    fn digests_differ_in_one_byte() {
        let a = sha256(b"x");
        let mut b = a;
        b[31] ^= 1;
        assert!(ct_eq(&a, &a) && !ct_eq(&a, &b));
    }
}
