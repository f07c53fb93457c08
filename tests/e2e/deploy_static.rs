//! Static checks of the deployment definitions, as far as this machine
//! allows (no provider downloads, no cluster): the Terraform parses and its
//! table is exactly `migrations/table.json` (a tampered copy is caught), it
//! passes checkov, and every kustomize overlay renders and validates
//! against the Kubernetes schemas. The tools live in venvs that `.ci/run`
//! makes; a missing tool skips the check, or fails it under
//! `BERTH_TEST_REQUIRE_EMULATORS=1` (as CI runs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::cli::exec;

const TIMEOUT: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `BERTH_TOOLS_DIR` (default `~/.cache/berth-tools`) joined with `rel`,
/// or the variable `var` when set; `None` (after the skip-or-fail rule)
/// when it does not exist.
fn tool(test: &str, var: &str, rel: &str) -> Option<PathBuf> {
    let path = crate::support::cli::installed_tool(var, rel);
    if path.exists() {
        return Some(path);
    }
    let required = std::env::var(berth::testkit::REQUIRE_EMULATORS).is_ok_and(|v| v == "1");
    assert!(!required, "{test}: {} is missing (.ci/run installs it; {var} names another)", path.display());
    eprintln!("skipping {test}: {} is missing (.ci/run installs it)", path.display());
    None
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn check_terraform(python: &Path, terraform: &Path) -> Output {
    let queues = berth::queue::ALL_QUEUES.join(",");
    exec(
        Command::new(python)
            .arg(repo().join("scripts/check-terraform"))
            .arg("--terraform")
            .arg(terraform)
            .arg("--table")
            .arg(repo().join("migrations/table.json"))
            .args(["--queues", &queues]),
        None,
        TIMEOUT,
    )
}

#[test]
fn terraform_parses_and_its_table_is_the_migrations_table() {
    let Some(python) = tool("terraform table check", "BERTH_TEST_HCL2_PYTHON", "hcl2-venv/bin/python") else {
        return;
    };
    let out = check_terraform(&python, &repo().join("terraform"));
    assert!(out.status.success(), "scripts/check-terraform:\n{}", text(&out));

    // The check is not vacuous: a copy whose table differs from
    // migrations/table.json in one attribute type and the TTL attribute fails.
    let copy = tempfile::tempdir().unwrap();
    let modules = copy.path().join("modules/berth");
    std::fs::create_dir_all(&modules).unwrap();
    for entry in std::fs::read_dir(repo().join("terraform/modules/berth")).unwrap() {
        let path = entry.unwrap().path();
        let mut body = std::fs::read_to_string(&path).unwrap();
        if path.file_name().is_some_and(|n| n == "storage.tf") {
            body = body.replacen("name = \"gsi2sk\"\n    type = \"S\"", "name = \"gsi2sk\"\n    type = \"N\"", 1);
            body = body.replacen("attribute_name = \"expires_at\"", "attribute_name = \"ttl\"", 1);
        }
        std::fs::write(modules.join(path.file_name().unwrap()), body).unwrap();
    }
    let out = check_terraform(&python, copy.path());
    let report = text(&out);
    assert!(!out.status.success(), "a changed table must fail the check:\n{report}");
    assert!(report.contains("attributes") && report.contains("ttl"), "{report}");
}

#[test]
fn terraform_passes_checkov() {
    let Some(checkov) = tool("checkov", "BERTH_TEST_CHECKOV", "checkov-venv/bin/checkov") else { return };
    // checkov phones home for policy metadata unless told not to; `unshare
    // -n` (root, as in CI) also takes the network away, so the check is
    // offline for certain.
    let args = ["-d", "terraform", "--quiet", "--compact", "--skip-download"];
    let isolated = exec(Command::new("unshare").args(["-n", "true"]), None, TIMEOUT).status.success();
    let mut cmd = if isolated {
        let mut c = Command::new("unshare");
        c.arg("-n").arg(&checkov);
        c
    } else {
        Command::new(&checkov)
    };
    let out = exec(cmd.args(args).current_dir(repo()).env("BC_SKIP_MAPPING", "TRUE"), None, TIMEOUT);
    let report = text(&out);
    assert!(out.status.success(), "checkov failed:\n{report}");
    assert!(report.contains("Failed checks: 0"), "{report}");
    eprintln!("{}", report.lines().find(|l| l.starts_with("Passed checks")).unwrap_or_default());
}

#[test]
fn kubernetes_overlays_render_and_validate() {
    let Some(validate) =
        tool("kubernetes-validate", "BERTH_TEST_KUBERNETES_VALIDATE", "k8s-venv/bin/kubernetes-validate")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let root = repo().join("infra/kubernetes");
    let mut dirs = vec![root.join("base")];
    let mut overlays: Vec<PathBuf> =
        std::fs::read_dir(root.join("overlays")).unwrap().map(|e| e.unwrap().path()).collect();
    overlays.sort();
    assert!(overlays.len() >= 2, "overlays: {overlays:?}");
    dirs.extend(overlays);
    for dir in dirs {
        let rendered = exec(Command::new("kubectl").arg("kustomize").arg(&dir), None, TIMEOUT);
        assert!(rendered.status.success(), "kubectl kustomize {}:\n{}", dir.display(), text(&rendered));
        let file = work.path().join(format!("{}.yaml", dir.file_name().unwrap().to_string_lossy()));
        std::fs::write(&file, &rendered.stdout).unwrap();
        let out = exec(Command::new(&validate).arg("--strict").arg(&file), None, TIMEOUT);
        assert!(out.status.success(), "kubernetes-validate --strict {}:\n{}", dir.display(), text(&out));
        let yaml = String::from_utf8_lossy(&rendered.stdout);
        for kind in
            ["Deployment", "Service", "Ingress", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"]
        {
            assert!(yaml.contains(&format!("kind: {kind}\n")), "{} renders no {kind}", dir.display());
        }
    }
    // And the validator is not vacuous: an unknown field fails it.
    let bad = work.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n    - port: 80\n  replicas: 2\n",
    )
    .unwrap();
    let out = exec(Command::new(&validate).arg("--strict").arg(&bad), None, TIMEOUT);
    assert!(!out.status.success(), "an unknown field must fail validation:\n{}", text(&out));
}

/// `terraform fmt -check` where a terraform binary is installed (it needs
/// no providers); an extra, so its absence is not a failure.
#[test]
fn terraform_is_formatted_where_terraform_exists() {
    let Ok(version) = Command::new("terraform").arg("version").output() else {
        eprintln!("skipping terraform fmt: no terraform binary");
        return;
    };
    assert!(version.status.success());
    let out = exec(
        Command::new("terraform").args(["fmt", "-check", "-recursive", "terraform"]).current_dir(repo()),
        None,
        TIMEOUT,
    );
    assert!(out.status.success(), "terraform fmt -check lists unformatted files:\n{}", text(&out));
}
