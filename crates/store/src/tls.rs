//! Certificate files, read and checked when the configuration loads rather than at the first
//! connection: PostgreSQL's `sslrootcert`, and a gateway route's `upstream_ca_file`.

use rustls::pki_types::pem::PemObject;
pub use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::path::Path;

/// The certificates of the PEM file at `path`: at least one, and each one usable as a trust
/// anchor (what a root store will do with it). Other PEM sections (a private key) are skipped.
/// The error names the file and the problem, never its contents.
pub fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let data = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut certificates = Vec::new();
    for (n, certificate) in CertificateDer::pem_slice_iter(&data).enumerate() {
        let certificate =
            certificate.map_err(|e| format!("{shown} is not a valid PEM file: {e}"))?;
        RootCertStore::empty()
            .add(certificate.clone())
            .map_err(|e| format!("certificate {} in {shown} is not usable: {e}", n + 1))?;
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err(format!(
            "{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn a_missing_empty_or_broken_file_is_refused_naming_it() {
        let err = pem_certificates(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(err.starts_with("cannot read /nonexistent/ca.pem"), "{err}");

        let empty = file("no certificate here\n");
        let err = pem_certificates(empty.path()).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");

        let broken =
            file("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n");
        let err = pem_certificates(broken.path()).unwrap_err();
        assert!(err.contains("not a valid PEM file"), "{err}");

        let garbage = file("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        let err = pem_certificates(garbage.path()).unwrap_err();
        assert!(
            err.contains("certificate 1 in") && err.contains("not usable"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod good {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn every_certificate_of_a_bundle_is_read_and_a_private_key_beside_them_is_skipped() {
        let mut text = String::new();
        for name in ["First CA", "Second CA"] {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let key = rcgen::KeyPair::generate().unwrap();
            text.push_str(&params.self_signed(&key).unwrap().pem());
            text.push_str(&key.serialize_pem());
        }
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        assert_eq!(pem_certificates(file.path()).unwrap().len(), 2);
    }
}
