//! The permission matrix, walked: every kind of caller (the system
//! administrator, each project role, a signed-in non-member, the anonymous
//! caller, a project robot and a system robot) tries every operation on
//! repositories, tags, members, robots and projects, in a private and in a
//! public project, through the real router (in process); each answer must be the one
//! Harbor's role table gives.
//!
//! The expectations below are written from Harbor's table (the role matrix
//! of `shared/reference/harbor-facts.md` §1.5 and Harbor's public-project
//! rules), not derived from berth's own table, so a wrong entry in either
//! shows up here.

use std::collections::BTreeMap;

use berth::oci::media::OCI_MANIFEST;
use http::Method;
use serde_json::{Value, json};

use crate::support::app::{Client, Robot, TestApp, image_manifest};

const USER_PASSWORD: &str = "Passw0rd1";

/// Who makes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Admin,
    ProjectAdmin,
    Maintainer,
    Developer,
    Guest,
    LimitedGuest,
    /// Signed in, but no member.
    Outsider,
    Anonymous,
    /// A robot of the project holding repository push and member list.
    ProjectRobot,
    /// A system robot holding repository pull in every project.
    SystemRobot,
}

const EVERYONE: &[Who] = &[
    Who::Admin,
    Who::ProjectAdmin,
    Who::Maintainer,
    Who::Developer,
    Who::Guest,
    Who::LimitedGuest,
    Who::Outsider,
    Who::Anonymous,
    Who::ProjectRobot,
    Who::SystemRobot,
];

impl Who {
    /// Harbor's role id, for members.
    fn role(self) -> Option<i64> {
        match self {
            Self::ProjectAdmin => Some(1),
            Self::Developer => Some(2),
            Self::Guest => Some(3),
            Self::Maintainer => Some(4),
            Self::LimitedGuest => Some(5),
            _ => None,
        }
    }

    fn user(self) -> Option<&'static str> {
        match self {
            Self::ProjectAdmin => Some("m-pa"),
            Self::Maintainer => Some("m-maint"),
            Self::Developer => Some("m-dev"),
            Self::Guest => Some("m-guest"),
            Self::LimitedGuest => Some("m-lguest"),
            Self::Outsider => Some("m-outsider"),
            _ => None,
        }
    }
}

/// The operations walked, each named for the permission it exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Pull,
    Push,
    DeleteManifest,
    ListTags,
    Catalog,
    ReadProject,
    UpdateProject,
    ListMembers,
    ReadMember,
    CreateMember,
    UpdateMember,
    DeleteMember,
    ListRobots,
    ReadRobot,
    CreateRobot,
    RefreshRobot,
    DeleteRobot,
    ListRepositories,
    ReadRepository,
    UpdateRepository,
    DeleteRepository,
    ListArtifacts,
    ReadArtifact,
    DeleteArtifact,
    ListArtifactTags,
    CreateTag,
    DeleteTag,
}

const OPS: &[Op] = &[
    Op::Pull,
    Op::Push,
    Op::DeleteManifest,
    Op::ListTags,
    Op::Catalog,
    Op::ReadProject,
    Op::UpdateProject,
    Op::ListMembers,
    Op::ReadMember,
    Op::CreateMember,
    Op::UpdateMember,
    Op::DeleteMember,
    Op::ListRobots,
    Op::ReadRobot,
    Op::CreateRobot,
    Op::RefreshRobot,
    Op::DeleteRobot,
    Op::ListRepositories,
    Op::ReadRepository,
    Op::UpdateRepository,
    Op::DeleteRepository,
    Op::ListArtifacts,
    Op::ReadArtifact,
    Op::DeleteArtifact,
    Op::ListArtifactTags,
    Op::CreateTag,
    Op::DeleteTag,
];

/// Harbor's table: which project roles may, in order ProjectAdmin,
/// Maintainer, Developer, Guest, LimitedGuest; whether anyone may in a
/// public project; and what the two robots' grants allow.
struct Rule {
    op: Op,
    roles: [bool; 5],
    public: bool,
    project_robot: bool,
    system_robot: bool,
}

const fn rule(op: Op, roles: [bool; 5], public: bool, project_robot: bool, system_robot: bool) -> Rule {
    Rule { op, roles, public, project_robot, system_robot }
}

const Y: bool = true;
const N: bool = false;

#[rustfmt::skip]
const TABLE: &[Rule] = &[
    //   operation              PA Maint Dev Guest LGuest  public  p-robot s-robot
    rule(Op::Pull,           [Y, Y, Y, Y, Y],  Y,      Y,      Y),
    rule(Op::Push,           [Y, Y, Y, N, N],  N,      Y,      N),
    rule(Op::DeleteManifest, [Y, Y, N, N, N],  N,      N,      N),
    rule(Op::ListTags,       [Y, Y, Y, Y, Y],  Y,      Y,      Y),
    // The catalog is the administrator's alone.
    rule(Op::Catalog,        [N, N, N, N, N],  N,      N,      N),
    rule(Op::ReadProject,    [Y, Y, Y, Y, Y],  Y,      N,      N),
    rule(Op::UpdateProject,  [Y, N, N, N, N],  N,      N,      N),
    rule(Op::ListMembers,    [Y, Y, Y, Y, N],  N,      Y,      N),
    rule(Op::ReadMember,     [Y, Y, Y, Y, N],  N,      N,      N),
    rule(Op::CreateMember,   [Y, N, N, N, N],  N,      N,      N),
    rule(Op::UpdateMember,   [Y, N, N, N, N],  N,      N,      N),
    rule(Op::DeleteMember,   [Y, N, N, N, N],  N,      N,      N),
    rule(Op::ListRobots,     [Y, Y, Y, Y, N],  N,      N,      N),
    rule(Op::ReadRobot,      [Y, Y, Y, Y, N],  N,      N,      N),
    rule(Op::CreateRobot,    [Y, N, N, N, N],  N,      N,      N),
    rule(Op::RefreshRobot,   [Y, N, N, N, N],  N,      N,      N),
    rule(Op::DeleteRobot,    [Y, N, N, N, N],  N,      N,      N),
    rule(Op::ListRepositories, [Y, Y, Y, Y, Y], Y,      N,      N),
    // A public project lets everyone list and pull its repositories, not
    // read one through the API.
    rule(Op::ReadRepository, [Y, Y, Y, Y, Y],  N,      N,      N),
    rule(Op::UpdateRepository, [Y, Y, Y, N, N], N,      N,      N),
    rule(Op::DeleteRepository, [Y, Y, N, N, N], N,      N,      N),
    rule(Op::ListArtifacts,  [Y, Y, Y, Y, Y],  Y,      N,      N),
    rule(Op::ReadArtifact,   [Y, Y, Y, Y, Y],  Y,      N,      N),
    rule(Op::DeleteArtifact, [Y, Y, N, N, N],  N,      N,      N),
    rule(Op::ListArtifactTags, [Y, Y, Y, Y, Y], Y,      Y,      Y),
    rule(Op::CreateTag,      [Y, Y, Y, N, N],  N,      N,      N),
    rule(Op::DeleteTag,      [Y, Y, N, N, N],  N,      N,      N),
];

fn expected(op: Op, who: Who, public: bool) -> bool {
    let r = TABLE.iter().find(|r| r.op == op).unwrap_or_else(|| panic!("{op:?} has no rule"));
    let by_role = match who {
        Who::Admin => true,
        Who::ProjectAdmin => r.roles[0],
        Who::Maintainer => r.roles[1],
        Who::Developer => r.roles[2],
        Who::Guest => r.roles[3],
        Who::LimitedGuest => r.roles[4],
        Who::ProjectRobot => r.project_robot,
        Who::SystemRobot => r.system_robot,
        Who::Outsider | Who::Anonymous => false,
    };
    // The catalog spans projects, so a public project does not open it.
    by_role || (public && r.public && op != Op::Catalog)
}

struct World {
    app: TestApp,
    robot_secrets: BTreeMap<(Who, String), Robot>,
    projects: BTreeMap<String, i64>,
}

impl World {
    /// `who`'s client (in `project`, for robots).
    fn as_who(&self, who: Who, project: &str) -> Client<'_> {
        match who {
            Who::Admin => self.app.admin(),
            Who::Anonymous => self.app.anonymous(),
            Who::ProjectRobot | Who::SystemRobot => self.app.robot(&self.robot_secrets[&(who, project.to_owned())]),
            _ => self.app.user(who.user().unwrap(), USER_PASSWORD),
        }
    }
}

/// An image manifest over the empty config, told apart by an annotation.
fn manifest(config: &str, note: &str) -> Vec<u8> {
    image_manifest(config, 2).annotation("note", note).bytes()
}

async fn setup() -> World {
    let app = TestApp::local().await;
    let mut world = World { app, robot_secrets: BTreeMap::new(), projects: BTreeMap::new() };
    for (name, public) in [("m-private", false), ("m-public", true)] {
        let id = world.app.create_project(name, public).await;
        world.projects.insert(name.to_owned(), id);
    }
    for who in EVERYONE {
        if let Some(name) = who.user() {
            world.app.create_user(name, USER_PASSWORD).await;
        }
    }
    world.app.create_user("m-newcomer", USER_PASSWORD).await;
    let system_robot = world
        .app
        .create_robot(&json!({"name": "m-reader", "level": "system", "duration": -1,
        "permissions": [{"kind": "project", "namespace": "*",
            "access": [{"resource": "repository", "action": "pull"}, {"resource": "tag", "action": "list"}]}]}))
        .await;
    for project in ["m-private", "m-public"] {
        let pid = world.projects[project];
        for who in EVERYONE {
            if let (Some(name), Some(role)) = (who.user(), who.role()) {
                world.app.add_member(pid, name, role).await;
            }
        }
        let robot = world
            .app
            .project_robot(project, "pusher", &[("repository", "push"), ("tag", "list"), ("member", "list")])
            .await;
        world.robot_secrets.insert((Who::ProjectRobot, project.to_owned()), robot);
        world.robot_secrets.insert((Who::SystemRobot, project.to_owned()), system_robot.clone());
        // What every caller pulls, lists and deletes.
        let repo = format!("{project}/app");
        let config = world.app.upload_blob(&repo, b"{}").await;
        let v1 = world.app.put_manifest(&repo, "v1", &manifest(&config, "v1")).await;
        for who in EVERYONE {
            // What each caller deletes: a manifest through /v2, an artifact
            // through the API, a tag, a whole repository.
            let lower = format!("{who:?}").to_lowercase();
            let gone = format!("{project}/gone-{lower}");
            world.app.upload_blob(&gone, b"{}").await;
            for (target, reference, note) in [
                (&repo, format!("del-{who:?}"), format!("{who:?}")),
                (&repo, format!("art-{who:?}"), format!("art-{who:?}")),
                (&gone, "1".to_owned(), "gone".to_owned()),
            ] {
                world.app.put_manifest(target, &reference, &manifest(&config, &note)).await;
            }
            let tags = format!("/api/v2.0/projects/{project}/repositories/app/artifacts/{v1}/tags");
            world.app.admin().post(&tags).json(&json!({"name": format!("dt-{lower}")})).send().await.success();
        }
    }
    world
}

/// Tries `op` as `who` in `project`; returns whether it was allowed, after
/// checking that a refusal has the right status and a protocol error body.
async fn attempt(world: &World, op: Op, who: Who, project: &str) -> bool {
    let app = &world.app;
    let pid = world.projects[project];
    let repo = format!("{project}/app");
    let tag = format!("{who:?}").to_lowercase();
    let config = berth::oci::Digest::sha256_of(b"{}").to_string();
    let caller = world.as_who(who, project);
    let req = |method: Method, path: &str| caller.request(method, path);
    let api_repos = format!("/api/v2.0/projects/{project}/repositories");
    let throwaway_member = || async move {
        let name = format!("m-tmp-{}", uuid_ish());
        app.create_user(&name, USER_PASSWORD).await;
        app.add_member(pid, &name, 3).await
    };
    let throwaway_robot =
        || async move { app.project_robot(project, &format!("tmp{}", uuid_ish()), &[("repository", "pull")]).await.id };
    let resp = match op {
        Op::Pull => req(Method::GET, &format!("/v2/{repo}/manifests/v1")).header("accept", OCI_MANIFEST).send().await,
        Op::Push => {
            req(Method::PUT, &format!("/v2/{repo}/manifests/push-{tag}"))
                .header("content-type", OCI_MANIFEST)
                .body(manifest(&config, &format!("push-{tag}")))
                .send()
                .await
        }
        Op::DeleteManifest => {
            let digest = berth::oci::Digest::sha256_of(&manifest(&config, &format!("{who:?}"))).to_string();
            req(Method::DELETE, &format!("/v2/{repo}/manifests/{digest}")).send().await
        }
        Op::ListTags => req(Method::GET, &format!("/v2/{repo}/tags/list")).send().await,
        Op::Catalog => req(Method::GET, "/v2/_catalog").send().await,
        Op::ReadProject => req(Method::GET, &format!("/api/v2.0/projects/{pid}")).send().await,
        Op::UpdateProject => {
            req(Method::PUT, &format!("/api/v2.0/projects/{pid}"))
                .json(&json!({"metadata": {"auto_scan": "false"}}))
                .send()
                .await
        }
        Op::ListMembers => req(Method::GET, &format!("/api/v2.0/projects/{pid}/members")).send().await,
        Op::ReadMember => {
            let mid = throwaway_member().await;
            req(Method::GET, &format!("/api/v2.0/projects/{pid}/members/{mid}")).send().await
        }
        Op::CreateMember => {
            let name = format!("m-add-{}", uuid_ish());
            app.create_user(&name, USER_PASSWORD).await;
            req(Method::POST, &format!("/api/v2.0/projects/{pid}/members"))
                .json(&json!({"role_id": 2, "member_user": {"username": name}}))
                .send()
                .await
        }
        Op::UpdateMember => {
            let mid = throwaway_member().await;
            req(Method::PUT, &format!("/api/v2.0/projects/{pid}/members/{mid}"))
                .json(&json!({"role_id": 2}))
                .send()
                .await
        }
        Op::DeleteMember => {
            let mid = throwaway_member().await;
            req(Method::DELETE, &format!("/api/v2.0/projects/{pid}/members/{mid}")).send().await
        }
        Op::ListRobots => {
            req(Method::GET, &format!("/api/v2.0/robots?q=Level%3Dproject%2CProjectID%3D{pid}")).send().await
        }
        Op::ReadRobot => {
            let id = throwaway_robot().await;
            req(Method::GET, &format!("/api/v2.0/robots/{id}")).send().await
        }
        Op::CreateRobot => {
            req(Method::POST, "/api/v2.0/robots")
                .json(&json!({"name": format!("made{}", uuid_ish()), "level": "project", "duration": 30,
                "permissions": [{"kind": "project", "namespace": project,
                    "access": [{"resource": "repository", "action": "pull"}]}]}))
                .send()
                .await
        }
        Op::RefreshRobot => {
            let id = throwaway_robot().await;
            req(Method::PATCH, &format!("/api/v2.0/robots/{id}")).json(&json!({})).send().await
        }
        Op::DeleteRobot => {
            let id = throwaway_robot().await;
            req(Method::DELETE, &format!("/api/v2.0/robots/{id}")).send().await
        }
        Op::ListRepositories => req(Method::GET, &api_repos).send().await,
        Op::ReadRepository => req(Method::GET, &format!("{api_repos}/app")).send().await,
        Op::UpdateRepository => {
            req(Method::PUT, &format!("{api_repos}/app"))
                .json(&json!({"description": format!("by {who:?}")}))
                .send()
                .await
        }
        Op::DeleteRepository => req(Method::DELETE, &format!("{api_repos}/gone-{tag}")).send().await,
        Op::ListArtifacts => req(Method::GET, &format!("{api_repos}/app/artifacts")).send().await,
        Op::ReadArtifact => req(Method::GET, &format!("{api_repos}/app/artifacts/v1")).send().await,
        Op::DeleteArtifact => req(Method::DELETE, &format!("{api_repos}/app/artifacts/art-{who:?}")).send().await,
        Op::ListArtifactTags => req(Method::GET, &format!("{api_repos}/app/artifacts/v1/tags")).send().await,
        Op::CreateTag => {
            req(Method::POST, &format!("{api_repos}/app/artifacts/v1/tags"))
                .json(&json!({"name": format!("new-{tag}")}))
                .send()
                .await
        }
        Op::DeleteTag => req(Method::DELETE, &format!("{api_repos}/app/artifacts/v1/tags/dt-{tag}")).send().await,
    };
    let status = resp.code();
    if resp.status.is_success() {
        return true;
    }
    let want = if who == Who::Anonymous { 401 } else { 403 };
    let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    let code = body["errors"][0]["code"].as_str().unwrap_or("").to_owned();
    let ctx = format!("{op:?} as {who:?} in {project}: {status} {body}");
    assert_eq!(status, want, "refused with the wrong status: {ctx}");
    let codes: &[&str] = if want == 401 { &["UNAUTHORIZED"] } else { &["DENIED", "FORBIDDEN"] };
    assert!(codes.contains(&code.as_str()), "refused without a protocol error body: {ctx}");
    false
}

fn uuid_ish() -> String {
    berth::testkit::unique("")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_caller_gets_exactly_what_harbors_table_says() {
    let world = setup().await;
    let mut wrong = Vec::new();
    let mut checked = 0;
    for project in ["m-private", "m-public"] {
        let public = project == "m-public";
        for &who in EVERYONE {
            for &op in OPS {
                let got = attempt(&world, op, who, project).await;
                let want = expected(op, who, public);
                checked += 1;
                if got != want {
                    wrong.push(format!("{op:?} as {who:?} in {project}: allowed={got}, Harbor says {want}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {checked} answers differ from Harbor's table:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(checked, 2 * EVERYONE.len() * OPS.len());
}

/// Docker clients go through the token service: a token carries exactly
/// the repository actions the caller's role allows, whatever it asks for.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_carry_exactly_the_role_s_repository_actions() {
    let world = setup().await;
    for project in ["m-private", "m-public"] {
        let public = project == "m-public";
        for &who in EVERYONE {
            let scope = format!("repository:{project}/app:pull,push,delete");
            let path = format!("/service/token?service=harbor-registry&scope={scope}");
            let body: Value = world.as_who(who, project).get(&path).send().await.success().json();
            let token = body["token"].as_str().unwrap();
            let payload = token.split('.').nth(1).unwrap();
            use base64::Engine as _;
            let claims: Value =
                serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
                    .unwrap();
            let granted: Vec<String> = claims["access"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|a| a["actions"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()))
                .collect();
            let mut want = Vec::new();
            for (op, word) in [(Op::Pull, "pull"), (Op::Push, "push"), (Op::DeleteManifest, "delete")] {
                if expected(op, who, public) {
                    want.push(word.to_owned());
                }
            }
            assert_eq!(granted, want, "token of {who:?} in {project}");
        }
    }
}
