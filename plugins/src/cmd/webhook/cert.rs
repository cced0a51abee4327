//! The webhook's own CA and serving certificate: made with rcgen, read back with x509-parser (their
//! expiry and names feed [`super::plan::cert_action`]). No I/O.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::plan::{CA_DAYS, CertFacts, SERVING_DAYS};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub cert: String,
    pub key: String,
}

fn validity(params: &mut CertificateParams, now: i64, days: i64) -> Result<(), String> {
    let start = rcgen::date_time_ymd(1970, 1, 1);
    // An hour back, for clocks a little behind ours.
    params.not_before = start + std::time::Duration::from_secs((now - 3600).max(0) as u64);
    params.not_after = start + std::time::Duration::from_secs((now + days * 86_400).max(0) as u64);
    Ok(())
}

/// A new CA (`CN=supsvc-webhook-ca`, valid [`CA_DAYS`] from `now`, Unix seconds).
///
/// # Errors
/// rcgen's, as text (key generation or signing failed).
pub fn new_ca(now: i64) -> Result<Pair, String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "supsvc-webhook-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, now, CA_DAYS)?;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A serving certificate for `hosts` (DNS names or IP addresses), signed by `ca`, valid
/// [`SERVING_DAYS`] from `now` (Unix seconds).
///
/// # Errors
/// A CA that does not parse, a host that is not a valid DNS name, or rcgen's failure, as text.
pub fn issue_serving(ca: &Pair, hosts: &[String], now: i64) -> Result<Pair, String> {
    let ca_key = KeyPair::from_pem(&ca.key).map_err(|e| format!("the CA's key: {e}"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key)
        .map_err(|e| format!("the CA's certificate: {e}"))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    for host in hosts {
        params.subject_alt_names.push(match host.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.clone()
                    .try_into()
                    .map_err(|e| format!("{host}: {e}"))?,
            ),
        });
    }
    params.distinguished_name.push(
        DnType::CommonName,
        hosts.first().map_or("supsvc-webhook", String::as_str),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    validity(&mut params, now, SERVING_DAYS)?;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
    Ok(Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Expiry (Unix seconds) and names of the first certificate of a PEM text; `None` if none parses.
pub fn read(pem: &str) -> Option<(i64, Vec<String>)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let not_after = cert.validity().not_after.timestamp();
    let mut hosts = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => hosts.push((*dns).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let ip: Option<std::net::IpAddr> = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(Into::into),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(Into::into),
                        _ => None,
                    };
                    hosts.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Some((not_after, hosts))
}

/// Whether `cert` (PEM) was signed by `ca` (PEM).
pub fn signed_by(cert: &str, ca: &str) -> bool {
    let parse = |pem: &str| {
        x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .ok()
            .map(|(_, p)| p)
    };
    let (Some(cert), Some(ca)) = (parse(cert), parse(ca)) else {
        return false;
    };
    let (Ok(cert), Ok(ca)) = (cert.parse_x509(), ca.parse_x509()) else {
        return false;
    };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// What the Secrets say of the live certificates: the CA (from the CA Secret, with its key) and
/// the serving certificate (from the TLS Secret, with its key, signed by that CA).
pub fn facts(ca: Option<&Pair>, serving: Option<&Pair>) -> CertFacts {
    let ca_read = ca
        .filter(|p| KeyPair::from_pem(&p.key).is_ok())
        .and_then(|p| read(&p.cert).map(|r| (p, r)));
    let Some((ca, (ca_not_after, _))) = ca_read else {
        return CertFacts::default();
    };
    let serving = serving
        .filter(|p| KeyPair::from_pem(&p.key).is_ok() && signed_by(&p.cert, &ca.cert))
        .and_then(|p| read(&p.cert));
    CertFacts {
        ca_not_after: Some(ca_not_after),
        serving_not_after: serving.as_ref().map(|s| s.0),
        serving_hosts: serving.map(|s| s.1).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::webhook::plan::{CertAction, cert_action};

    #[test]
    fn a_serving_certificate_signed_by_the_ca_reads_back_with_its_expiry_and_names() {
        let now = 1_800_000_000;
        let ca = new_ca(now).unwrap();
        let hosts = vec![
            "supsvc-webhook.guard.svc".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        let serving = issue_serving(&ca, &hosts, now).unwrap();
        let (not_after, names) = read(&serving.cert).unwrap();
        assert_eq!(not_after, now + SERVING_DAYS * 86_400);
        assert_eq!(names, hosts);
        assert!(signed_by(&serving.cert, &ca.cert));
        let facts = facts(Some(&ca), Some(&serving));
        assert_eq!(facts.ca_not_after, Some(now + CA_DAYS * 86_400));
        assert_eq!(cert_action(&facts, &hosts, now, false), CertAction::Keep);
        // A year later the serving certificate is due; the CA is not.
        let later = now + (SERVING_DAYS - 10) * 86_400;
        assert!(matches!(
            cert_action(&facts, &hosts, later, false),
            CertAction::IssueServing(_)
        ));

        // A certificate from another CA is not taken for this CA's.
        let other = new_ca(now).unwrap();
        let foreign = issue_serving(&other, &hosts, now).unwrap();
        assert!(!signed_by(&foreign.cert, &ca.cert));
        assert_eq!(
            super::facts(Some(&ca), Some(&foreign)).serving_not_after,
            None
        );
        assert_eq!(super::facts(None, Some(&serving)), CertFacts::default());
        assert_eq!(read("not a certificate"), None);
    }
}
