//! `deploy/`: the Grafana dashboard and the Prometheus alert rules stay
//! true to the node. A real node on the fast model is driven through a
//! warning, a breach, a late and an on-time hand-off and a malformed call;
//! then every `handoff_*` name the dashboard and the rules mention must be
//! in its `/metrics`, every label they use must be one the node exports (or
//! Prometheus' own `instance` and `job`), and none may be a customer id.
//! With `promtool` on PATH the rules are checked and their unit tests run,
//! and the dashboard's queries are checked as PromQL; under `CI=true` a
//! missing `promtool` fails the test (`.ci/run` installs it).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{NodeProcess, event, eventually, fast_model, fresh_dir, ingest, root};
use handoff::api::pb;

fn dashboard_path() -> PathBuf {
    root().join("deploy/grafana/handoff.json")
}

fn alerts_path() -> PathBuf {
    root().join("deploy/prometheus/alerts.yml")
}

/// Names of the form `handoff_...` anywhere in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("handoff_") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

/// The dashboard's queries: every `expr`, and its variables' `definition`s.
fn dashboard_queries(dashboard: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    fn walk(v: &serde_json::Value, exprs: &mut Vec<String>, vars: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(s)) => exprs.push(s.clone()),
                        ("definition", serde_json::Value::String(s)) => vars.push(s.clone()),
                        ("legendFormat", serde_json::Value::String(s)) => vars.push(s.clone()),
                        _ => walk(v, exprs, vars),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for v in items {
                    walk(v, exprs, vars);
                }
            }
            _ => {}
        }
    }
    let (mut exprs, mut vars) = (Vec::new(), Vec::new());
    walk(dashboard, &mut exprs, &mut vars);
    (exprs, vars)
}

/// The rules' `expr:` values, single-line or `|` blocks.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest != "|" && rest != ">" && rest != "|-" && rest != ">-" {
            exprs.push(rest.trim_matches('\'').to_owned());
            continue;
        }
        let mut block = String::new();
        while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > indent(line)) {
            block.push_str(lines[i].trim());
            block.push('\n');
            i += 1;
        }
        exprs.push(block);
    }
    exprs
}

/// Label names a PromQL expression (or a Grafana legend, or a variable's
/// `label_values(...)`) uses: `by (...)`, `without (...)`, matchers in
/// `{...}`, `{{label}}` and `$labels.label`.
fn label_names(text: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for keyword in ["by", "without"] {
        for (at, _) in text.match_indices(keyword) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let rest = text[at + keyword.len()..].trim_start();
            if let Some(inner) = rest.strip_prefix('(').and_then(|r| r.split(')').next()) {
                labels.extend(inner.split(',').map(ident).filter(|l| !l.is_empty()));
            }
        }
    }
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        if let Some(legend) = after.strip_prefix('{') {
            // `{{label}}` in a legend.
            let end = legend.find("}}").unwrap_or(legend.len());
            let inner = legend[..end].trim();
            if !inner.starts_with('$') && !inner.starts_with('.') {
                labels.insert(ident(inner));
            }
            rest = &legend[end..];
            continue;
        }
        let end = after.find('}').unwrap_or(after.len());
        for matcher in after[..end].split(',') {
            let name = ident(matcher);
            if !name.is_empty() {
                labels.insert(name);
            }
        }
        rest = &after[end..];
    }
    for (at, _) in text.match_indices("$labels.") {
        labels.insert(ident(&text[at + "$labels.".len()..]));
    }
    if let Some(args) = text.trim().strip_prefix("label_values(")
        && let Some(last) = args.rsplit(',').next()
    {
        labels.insert(ident(last.trim_end_matches(')')));
    }
    labels.retain(|l| !l.is_empty());
    labels
}

/// Sample names and label names (with their values) in Prometheus text.
struct Scrape {
    names: BTreeSet<String>,
    labels: BTreeSet<String>,
    values: BTreeSet<String>,
}

fn parse_scrape(text: &str) -> Scrape {
    let mut scrape = Scrape {
        names: BTreeSet::new(),
        labels: BTreeSet::new(),
        values: BTreeSet::new(),
    };
    for line in text.lines() {
        if line.starts_with('#') || !line.starts_with("handoff_") {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        scrape.names.insert(line[..name_end].to_owned());
        if line[name_end..].starts_with('{') {
            let inner = &line[name_end + 1..line.rfind('}').unwrap_or(line.len())];
            for pair in inner.split("\",") {
                if let Some((k, v)) = pair.split_once('=') {
                    scrape.labels.insert(k.trim().to_owned());
                    scrape.values.insert(v.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    scrape
}

/// Customers of the traffic below; none may show up as a label value.
const GHOST: &str = "deploy-ghost-4711";
const QUICK: &str = "deploy-quick-4712";
const AT_RISK: &str = "deploy-at-risk-4713";

/// The fast model with support's first reply due in 10 minutes (not 4
/// hours) outside DE: an open ticket's breach, its only tier, is then due
/// within the at-risk horizon (15 minutes) from the start.
fn model_with_a_quick_reply(dir: &Path) -> PathBuf {
    let fast = std::fs::read_to_string(fast_model()).expect("the fast model");
    let core = "within = \"4h\"\nwithin_bounds = [\"1h\", \"8h\"]";
    assert_eq!(fast.matches(core).count(), 1, "first_reply's within");
    let quick = "within = \"10m\"\nwithin_bounds = [\"5m\", \"8h\"]";
    let path = dir.join("deploy.toml");
    std::fs::write(&path, fast.replace(core, quick)).expect("write the model");
    path
}

/// The sum of `handoff_sla_breaches_due` over shards for `sla`.
fn breaches_due(text: &str, sla: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with("handoff_sla_breaches_due{") && l.contains(&format!("sla=\"{sla}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_use_only_exported_metrics_and_no_customer_labels() {
    let data = fresh_dir("deploy");
    let model = model_with_a_quick_reply(&fresh_dir("deploy-model"));
    let node = NodeProcess::start(&data, &model);
    let mut client = node.lifecycle().await;

    // A ghost customer in BR: warned at 1 s, breached at 2 s, then done late.
    for (id, source, ty) in [
        ("g1", "crm", "deal_won"),
        ("g2", "billing", "payment_succeeded"),
    ] {
        ingest(&mut client, event(id, source, ty, GHOST, "BR")).await;
    }
    // A US customer's ticket, its first reply due in 10 minutes: at risk.
    ingest(
        &mut client,
        event("r1", "support", "ticket_opened", AT_RISK, "US"),
    )
    .await;
    // A customer in BR whose access follows at once: met.
    for (id, source, ty) in [
        ("q1", "crm", "deal_won"),
        ("q2", "billing", "payment_succeeded"),
        ("q3", "access", "access_granted"),
    ] {
        ingest(&mut client, event(id, source, ty, QUICK, "BR")).await;
    }
    // A malformed call: INVALID_ARGUMENT, counted by call and reason.
    let refused = client
        .ingest(pb::IngestRequest {
            event: Some(event("bad", "crm", "deal_won", "", "US")),
        })
        .await
        .expect_err("an empty customer id is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    eventually(
        Duration::from_secs(30),
        "the ghost customer's breach",
        || {
            let text = node.scrape();
            async move { text.contains("handoff_breaches_total{").then_some(()) }
        },
    )
    .await;
    ingest(
        &mut client,
        event("g3", "access", "access_granted", GHOST, "BR"),
    )
    .await;
    eventually(Duration::from_secs(30), "both SLA outcomes", || {
        let text = node.scrape();
        async move {
            (text.contains("outcome=\"missed\"") && text.contains("outcome=\"met\"")).then_some(())
        }
    })
    .await;
    // At risk: the open ticket (counted every 5 s), and no longer the
    // ghost, done; every SLA of every shard has the series.
    let text = eventually(Duration::from_secs(30), "one SLA at risk", || {
        let text = node.scrape();
        async move {
            (breaches_due(&text, "first_reply") == 1.0
                && breaches_due(&text, "access_after_payment") == 0.0)
                .then_some(text)
        }
    })
    .await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("handoff_sla_breaches_due{")
                && l.contains("sla=\"dispute_evidence\"")
                && l.contains("shard=\"15\"")),
        "no at-risk gauge for every SLA and shard in\n{text}"
    );
    let scrape = parse_scrape(&text);

    let dashboard_text = std::fs::read_to_string(dashboard_path()).expect("the dashboard");
    let dashboard: serde_json::Value =
        serde_json::from_str(&dashboard_text).expect("the dashboard is JSON");
    let alerts = std::fs::read_to_string(alerts_path()).expect("the alert rules");
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "a current Grafana's schemaVersion"
    );

    // Every metric named in either file is exported.
    for (file, text) in [("handoff.json", &dashboard_text), ("alerts.yml", &alerts)] {
        let used = metric_names(text);
        assert!(used.len() >= 5, "{file} names only {used:?}");
        let missing: Vec<_> = used.difference(&scrape.names).collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics the node does not export: {missing:?}\nexported: {:?}",
            scrape.names
        );
    }

    // Every label used is exported (or is the target's), and none is a
    // customer's.
    let (exprs, others) = dashboard_queries(&dashboard);
    assert!(exprs.len() >= 20, "the dashboard's queries: {exprs:?}");
    let mut used = BTreeSet::new();
    for text in exprs.iter().chain(&others).chain(&rule_exprs(&alerts)) {
        used.extend(label_names(text));
    }
    used.extend(label_names(&alerts));
    for expected in [
        "sla", "market", "handoff", "instance", "le", "team", "outcome",
    ] {
        assert!(used.contains(expected), "{expected} not found in {used:?}");
    }
    let target = BTreeSet::from(["instance".to_owned(), "job".to_owned()]);
    let unknown: Vec<_> = used
        .iter()
        .filter(|l| !scrape.labels.contains(*l) && !target.contains(*l))
        .collect();
    assert!(
        unknown.is_empty(),
        "labels the node does not export: {unknown:?}"
    );
    for label in used.iter().chain(&scrape.labels) {
        assert!(!label.contains("customer"), "a customer label: {label}");
    }
    for id in [GHOST, QUICK, AT_RISK] {
        assert!(
            !scrape.values.iter().any(|v| v.contains(id)),
            "customer {id} appears in a label value"
        );
    }
}

/// `promtool`, if on PATH; under `CI=true` it must be.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool is not on PATH: CI must check the alert rules (`apt-get install prometheus`, as .ci/run does)"
        );
        eprintln!("promtool not on PATH: alert rules not checked (apt-get install prometheus)");
    }
    found
}

fn run_promtool(promtool: &Path, args: &[&str]) {
    let out = common::run_with_limit(
        Command::new(promtool).args(args).current_dir(root()),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_and_dashboard_queries_pass_promtool() {
    let Some(promtool) = promtool() else {
        return;
    };
    run_promtool(
        &promtool,
        &["check", "rules", "deploy/prometheus/alerts.yml"],
    );
    run_promtool(
        &promtool,
        &["test", "rules", "deploy/prometheus/alerts_test.yml"],
    );

    // The dashboard's queries, with Grafana's variables filled in, as
    // recording rules: promtool parses each as PromQL.
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dashboard_path()).expect("the dashboard"))
            .expect("the dashboard is JSON");
    let (exprs, _) = dashboard_queries(&dashboard);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, expr) in exprs.iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "5m")
            .replace("$__range", "1h")
            .replace("$instance", ".*")
            .replace("$sla", ".*")
            .replace("$market", ".*")
            .replace("$handoff", ".*");
        assert!(!expr.contains('$'), "an unknown variable in {expr}");
        rules.push_str(&format!(
            "      - record: dashboard_query_{n}\n        expr: '{}'\n",
            expr.replace('\'', "''")
        ));
    }
    let dir = fresh_dir("deploy-promql");
    let file = dir.join("dashboard_rules.yml");
    std::fs::write(&file, rules).expect("write the dashboard's queries");
    run_promtool(
        &promtool,
        &["check", "rules", file.to_str().expect("a UTF-8 path")],
    );
}

#[test]
fn label_names_reads_promql_legends_and_templates() {
    let got = label_names(
        r#"sum by (sla, market) (rate(x{instance=~"$instance", outcome="met"}[5m])) {{team}} {{ $labels.handoff }}"#,
    );
    let want: BTreeSet<String> = ["sla", "market", "instance", "outcome", "team", "handoff"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        label_names("label_values(handoff_shed_total, instance)"),
        BTreeSet::from(["instance".to_owned()])
    );
    assert_eq!(
        metric_names("rate(handoff_a_total[5m]) / xhandoff_b + handoff_c_bucket"),
        BTreeSet::from(["handoff_a_total".to_owned(), "handoff_c_bucket".to_owned()])
    );
}
