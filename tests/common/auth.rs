//! Helpers for the `auth_*` tests: a throwaway PKI made with rcgen, tokens
//! made with the real `handoff token new`, a node config with TLS and
//! credentials, TLS channels, requests with a bearer token, and a record of
//! every error message the node sent back (to check none holds a token).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use super::{NodeProcess, fast_model};
use handoff::api::pb;
use handoff::api::pb::escalations_client::EscalationsClient;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Response, Status};

/// A throwaway PKI in a directory: a CA, the node's certificate for
/// 127.0.0.1 and localhost, and client certificates named by principal.
pub struct Pki {
    dir: PathBuf,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&key).expect("the CA certificate");
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        };
        pki.write(&format!("{name}-ca.crt"), &pki.ca_pem);
        pki
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write a PEM file");
        path
    }

    pub fn ca_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-ca.crt"))
    }

    /// A certificate and key signed by this CA, as PEM.
    pub fn issue(
        &self,
        sans: &[&str],
        cn: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let key = KeyPair::generate().expect("a key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    /// The node's certificate and key files.
    pub fn server_files(&self) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue(
            &["127.0.0.1", "localhost"],
            "handoff node",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        (self.write("node.crt", &cert), self.write("node.key", &key))
    }

    /// A client certificate whose subject CN is `principal`.
    pub fn client(&self, principal: &str) -> Identity {
        let (cert, key) = self.issue(&[], principal, ExtendedKeyUsagePurpose::ClientAuth);
        Identity::from_pem(cert, key)
    }

    pub fn client_files(&self, principal: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue(&[], principal, ExtendedKeyUsagePurpose::ClientAuth);
        let file = principal.replace(':', "-");
        (
            self.write(&format!("{file}.crt"), &cert),
            self.write(&format!("{file}.key"), &key),
        )
    }
}

/// Makes a token with the real `handoff token new` and returns it with
/// the `[[credentials]]` entry it printed.
pub fn token_from_cli(who: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["token", "new"])
        .args(who)
        .arg("--model")
        .arg(fast_model())
        .output()
        .expect("handoff token new runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let token = text
        .lines()
        .find(|l| l.starts_with("hnd_"))
        .expect("a token line")
        .to_owned();
    let entry = text
        .split_once("[[credentials]]")
        .map(|(_, rest)| format!("[[credentials]]{rest}"))
        .expect("a config entry");
    assert!(
        !entry.contains(&token),
        "the config entry holds only the hash"
    );
    (token, entry)
}

pub fn token_for(principal: &str) -> (String, String) {
    let token = handoff::auth::new_token().expect("a token");
    let entry = format!(
        "[[credentials]]\nprincipal = \"{principal}\"\nsha256 = \"{}\"\n",
        handoff::auth::token_hash_hex(&token)
    );
    (token, entry)
}

pub fn quoted(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// A node config with TLS, client certificates and these credentials.
pub fn secure_config(dir: &Path, pki: &Pki, entries: &[String]) -> PathBuf {
    let (cert, key) = pki.server_files();
    let mut text = format!(
        "tls_cert = {}\ntls_key = {}\ntls_client_ca = {}\n\n",
        quoted(&cert),
        quoted(&key),
        quoted(&pki.ca_file("main"))
    );
    for e in entries {
        text.push_str(e);
        text.push('\n');
    }
    let path = dir.join("node.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

pub async fn tls_channel(node: &NodeProcess, pki: &Pki, identity: Option<Identity>) -> Channel {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem));
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Endpoint::from_shared(format!("https://{}", node.addr))
        .expect("a valid uri")
        .tls_config(tls)
        .expect("a TLS config")
        .connect()
        .await
        .expect("connects over TLS")
}

/// A request with `authorization: Bearer <token>` (or none).
pub fn with<T>(token: Option<&str>, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("ascii"),
        );
    }
    r
}

/// Every error message the node sent back, to check none holds a token.
#[derive(Default)]
pub struct Errors(pub Vec<String>);

impl Errors {
    pub fn expect<T: std::fmt::Debug>(
        &mut self,
        r: Result<Response<T>, Status>,
        code: Code,
        says: &str,
    ) -> Status {
        let s = r.expect_err("the call must fail");
        assert_eq!(s.code(), code, "{s:?}");
        assert!(s.message().contains(says), "`{says}` in: {}", s.message());
        self.0.push(s.message().to_owned());
        s
    }

    pub fn denied<T: std::fmt::Debug>(&mut self, r: Result<Response<T>, Status>, rule: &str) {
        self.expect(
            r,
            Code::PermissionDenied,
            &format!("denied by rule {rule}:"),
        );
    }
}

pub fn ingest_req(e: pb::Event) -> pb::IngestRequest {
    pb::IngestRequest { event: Some(e) }
}

pub fn view(token: Option<&str>, customer: &str) -> Request<pb::GetCustomerRequest> {
    with(
        token,
        pb::GetCustomerRequest {
            customer_id: customer.into(),
            timeline_limit: 0,
        },
    )
}

pub fn state_of(v: &pb::CustomerView, region: &str) -> String {
    v.regions
        .iter()
        .find(|r| r.region == region)
        .map(|r| r.state.clone())
        .unwrap_or_default()
}

/// Follows the escalation stream in the background, keeping what arrives.
pub fn follow(
    mut client: EscalationsClient<Channel>,
    req: Request<pb::SubscribeRequest>,
) -> Arc<Mutex<Vec<pb::EscalationEvent>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        let mut stream = client
            .subscribe(req)
            .await
            .expect("subscribed")
            .into_inner();
        while let Ok(Some(e)) = stream.message().await {
            sink.lock().expect("not poisoned").push(e);
        }
    });
    seen
}

pub fn subscribe_all(token: Option<&str>, teams: &[&str]) -> Request<pb::SubscribeRequest> {
    with(
        token,
        pb::SubscribeRequest {
            teams: teams.iter().map(|t| t.to_string()).collect(),
            cursor: "earliest".into(),
            ..Default::default()
        },
    )
}

pub fn kind(e: &pb::EscalationEvent) -> pb::EscalationKind {
    pb::EscalationKind::try_from(e.kind).expect("a known kind")
}
