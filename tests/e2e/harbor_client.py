"""Drives berth's /api/v2.0 with harborapi, a Harbor client written by
others that validates every response against its models of Harbor's API.

    python harbor_client.py URL USER PASSWORD PROJECT

Prints one line per step; exits non-zero on the first mismatch.
"""

import asyncio
import hashlib
import json
import sys

import httpx

from harborapi import HarborAsyncClient
from harborapi.exceptions import Conflict, NotFound, Unauthorized
from harborapi.models import (
    Access,
    CVEAllowlist,
    CVEAllowlistItem,
    Label,
    Configurations,
    Repository,
    Tag,
    ProjectMetadata,
    ProjectReq,
    RobotCreate,
    RobotPermission,
    UserCreationReq,
    UserGroup,
    UserProfile,
)


async def main() -> None:
    url, user, password, project = sys.argv[1:5]
    client = HarborAsyncClient(url=f"{url}/api/v2.0", username=user, secret=password)

    info = await client.get_system_info()
    assert info.harbor_version, info
    print("systeminfo", info.registry_storage_provider_name)

    me = await client.get_current_user()
    assert me.username == user and me.sysadmin_flag, me
    print("current user", me.username)

    health = await client.health_check()
    assert health.status == "healthy", health
    print("health", health.status)

    location = await client.create_project(
        ProjectReq(project_name=project, metadata=ProjectMetadata(public="false", auto_scan="true"))
    )
    print("created", location)
    try:
        await client.create_project(ProjectReq(project_name=project))
        raise AssertionError("a second create of one name must conflict")
    except Conflict:
        print("conflict ok")

    assert await client.project_exists(project)
    assert not await client.project_exists(project + "-missing")

    p = await client.get_project(project)
    assert p.name == project, p
    assert p.metadata.public == "false" and p.metadata.auto_scan == "true", p.metadata
    by_id = await client.get_project(p.project_id)
    assert by_id.name == project
    print("get", p.project_id)

    await client.update_project(project, ProjectReq(metadata=ProjectMetadata(public="true")))
    assert (await client.get_project(project)).metadata.public == "true"
    print("updated")

    projects = await client.get_projects(name=project)
    assert [x.name for x in projects] == [project], projects
    everything = await client.get_projects(page_size=1)
    assert {"library", project} <= {x.name for x in everything}, everything
    print("listed", len(everything))

    summary = await client.get_project_summary(project)
    assert summary.repo_count == 0, summary
    print("summary", summary.repo_count)

    await artifacts(client, url, user, password, project)
    await accounts(client, project, p.project_id)

    await client.delete_project(project)
    try:
        await client.get_project(project)
        raise AssertionError("a deleted project must be gone")
    except NotFound:
        print("deleted")

    wrong = HarborAsyncClient(url=f"{url}/api/v2.0", username=user, secret=password + "x")
    try:
        await wrong.create_project(ProjectReq(project_name=project))
        raise AssertionError("a wrong password must be refused")
    except Unauthorized:
        print("unauthorized ok")


def push_image(url: str, auth: tuple, repo: str, tag: str) -> str:
    """Pushes a one-layer image with raw /v2 requests; its digest."""
    blobs = [b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}', b"layer of " + repo.encode()]
    with httpx.Client(base_url=url, auth=auth) as http:
        for blob in blobs:
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            r = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=blob,
                          headers={"content-type": "application/octet-stream"})
            assert r.status_code == 201, r.text
        config, layer = ("sha256:" + hashlib.sha256(b).hexdigest() for b in blobs)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": len(blobs[0])},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": len(blobs[1])}],
            "annotations": {"org.opencontainers.image.title": repo},
        }).encode()
        r = http.put(f"/v2/{repo}/manifests/{tag}", content=manifest,
                     headers={"content-type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 201, r.text
        return "sha256:" + hashlib.sha256(manifest).hexdigest()


async def artifacts(client: HarborAsyncClient, url: str, user: str, password: str, project: str) -> None:
    """Repositories, artifacts and tags of an image pushed through /v2."""
    digest = push_image(url, (user, password), f"{project}/app/sub", "v1")
    repos = await client.get_repositories(project)
    assert [r.name for r in repos] == [f"{project}/app/sub"] and repos[0].artifact_count == 1, repos
    assert f"{project}/app/sub" in [r.name for r in await client.get_repositories()]
    await client.update_repository(project, "app/sub", Repository(description="nested, encoded twice"))
    assert (await client.get_repository(project, "app/sub")).description == "nested, encoded twice"

    arts = await client.get_artifacts(project, "app/sub")
    assert len(arts) == 1 and arts[0].digest == digest and arts[0].type == "IMAGE", arts
    assert [t.name for t in arts[0].tags] == ["v1"], arts[0].tags
    art = await client.get_artifact(project, "app/sub", "v1")
    assert art.digest == digest and art.media_type == "application/vnd.oci.image.config.v1+json", art
    await client.create_artifact_tag(project, "app/sub", digest, Tag(name="v2"))
    assert sorted(t.name for t in await client.get_artifact_tags(project, "app/sub", "v1")) == ["v1", "v2"]
    try:
        await client.create_artifact_tag(project, "app/sub", digest, Tag(name="v2"))
        raise AssertionError("an existing tag must conflict")
    except Conflict:
        pass
    await client.delete_artifact_tag(project, "app/sub", digest, "v2")
    assert [t.name for t in await client.get_artifact_tags(project, "app/sub", digest)] == ["v1"]
    print("artifacts", len(arts))
    await catalogue(client, url, (user, password), project, digest)

    await client.copy_artifact(project, "copy", f"{project}/app/sub:v1")
    copied = await client.get_artifact(project, "copy", "v1")
    assert copied.digest == digest, copied
    await client.delete_artifact(project, "copy", "v1")
    try:
        await client.get_artifact(project, "copy", digest)
        raise AssertionError("a deleted artifact must be gone")
    except NotFound:
        pass
    await client.delete_repository(project, "copy")
    await client.delete_repository(project, "app/sub")
    assert await client.get_repositories(project) == []
    print("repositories deleted")


async def catalogue(client: HarborAsyncClient, url: str, auth: tuple, project: str, digest: str) -> None:
    """Labels, accessories, additions, icons, the project-wide artifact
    list, CVE allowlists and the system's volumes, on the image of
    `artifacts`."""
    p = await client.get_project(project)
    location = await client.create_label(Label(name=f"{project}-env", color="#00AA00", scope="g"))
    gid = int(location.rsplit("/", 1)[1])
    location = await client.create_label(
        Label(name=f"{project}-team", scope="p", project_id=p.project_id, description="the team"))
    pid = int(location.rsplit("/", 1)[1])
    assert (await client.get_label(gid)).name == f"{project}-env"
    await client.update_label(pid, Label(name=f"{project}-squad", description="renamed"))
    assert (await client.get_label(pid)).name == f"{project}-squad"
    globals_ = await client.get_labels(scope="g", name=f"{project}-env")
    assert [x.id for x in globals_] == [gid], globals_
    mine = await client.get_labels(scope="p", project_id=p.project_id)
    assert [x.id for x in mine] == [pid], mine
    await client.add_artifact_label(project, "app/sub", "v1", Label(id=gid))
    await client.add_artifact_label(project, "app/sub", "v1", Label(id=pid))
    try:
        await client.add_artifact_label(project, "app/sub", "v1", Label(id=gid))
        raise AssertionError("a label put on twice must conflict")
    except Conflict:
        pass
    art = await client.get_artifact(project, "app/sub", "v1", with_label=True)
    assert sorted(x.id for x in art.labels) == sorted([gid, pid]), art.labels
    await client.delete_artifact_label(project, "app/sub", "v1", pid)
    art = await client.get_artifact(project, "app/sub", "v1", with_label=True)
    assert [x.id for x in art.labels] == [gid], art.labels
    await client.delete_label(pid)
    print("labels", gid)

    # A signature made through subject: an accessory, left out of lists.
    sig = push_referrer(url, auth, f"{project}/app/sub", digest)
    arts = await client.get_artifacts(project, "app/sub")
    assert [a.digest for a in arts] == [digest], arts
    accessories = await client.get_artifact_accessories(project, "app/sub", "v1")
    assert [(a.digest, a.type, a.subject_artifact_digest) for a in accessories] == [
        (sig, "signature.notation", digest)], accessories
    art = await client.get_artifact(project, "app/sub", "v1", with_accessory=True)
    assert [a.digest for a in art.accessories] == [sig], art.accessories
    print("accessories", len(accessories))

    history = await client.get_artifact_build_history(project, "app/sub", "v1")
    assert history == [], history
    try:
        await client.get_artifact_vulnerabilities(project, "app/sub", "v1")
        raise AssertionError("no scanner has reported yet")
    except NotFound:
        pass
    icon = await client.get_icon(art.icon)
    assert icon.content_type == "image/svg+xml" and icon.content, icon
    across = await client.get_project_artifacts(project, with_tag=True)
    assert [(a.repository_name, a.digest) for a in across] == [(f"{project}/app/sub", digest)], across
    print("additions", art.icon)

    await client.update_cve_allowlist(CVEAllowlist(items=[CVEAllowlistItem(cve_id="CVE-2024-0001")], expires_at=None))
    allowlist = await client.get_cve_allowlist()
    assert [i.cve_id for i in allowlist.items] == ["CVE-2024-0001"], allowlist
    await client.update_cve_allowlist(CVEAllowlist(items=[]))
    assert (await client.get_cve_allowlist()).items == []
    volumes = await client.get_system_volume_info()
    if (await client.get_system_info()).registry_storage_provider_name == "filesystem":
        assert volumes.storage and volumes.storage[0].total > 0, volumes
    else:
        assert volumes.storage == [], volumes  # blobs in S3: no local disk
    # harborapi hands the file over whatever the status: here Harbor's 404 body.
    cert = bytes(await client.get_system_certificate())
    assert b"no CA certificate is configured" in cert, cert
    await client.delete_label(gid)
    print("system", len(volumes.storage))


def push_referrer(url: str, auth: tuple, repo: str, subject: str) -> str:
    """Pushes a Notation-type signature of `subject` through the OCI
    subject field; its digest."""
    empty = b"{}"
    payload = b'{"signature":"berth test"}'
    with httpx.Client(base_url=url, auth=auth) as http:
        for blob in (empty, payload):
            d = "sha256:" + hashlib.sha256(blob).hexdigest()
            r = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": d}, content=blob,
                          headers={"content-type": "application/octet-stream"})
            assert r.status_code == 201, r.text
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cncf.notary.signature",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": "sha256:" + hashlib.sha256(empty).hexdigest(), "size": 2},
            "layers": [{"mediaType": "application/jose+json",
                        "digest": "sha256:" + hashlib.sha256(payload).hexdigest(), "size": len(payload)}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": 1},
        }).encode()
        d = "sha256:" + hashlib.sha256(manifest).hexdigest()
        r = http.put(f"/v2/{repo}/manifests/{d}", content=manifest,
                     headers={"content-type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 201, r.text
        return d


async def accounts(client: HarborAsyncClient, project: str, project_id: int) -> None:
    """Users, members, robots, groups, permissions and configurations."""
    name = f"{project}-user"
    location = await client.create_user(
        UserCreationReq(
            username=name, email=f"{name}@example.com", realname="E2E User", password="Passw0rdX", comment="e2e"
        )
    )
    uid = int(location.rsplit("/", 1)[1])
    user = await client.get_user(uid)
    assert user.username == name and not user.sysadmin_flag, user
    assert [u.username for u in await client.get_users(query=f"username=~{project}")] == [name]
    assert [u.username for u in await client.search_users_by_username(name)] == [name]
    await client.update_user(uid, UserProfile(email=f"{name}@example.org", realname="Renamed", comment="c"))
    assert (await client.get_user(uid)).realname == "Renamed"
    await client.set_user_admin(uid, True)
    assert (await client.get_user(uid)).sysadmin_flag
    await client.set_user_admin(uid, False)
    print("users", uid)

    await client.add_project_member_user(project, name, 2)
    members = await client.get_project_members(project)
    member = next(m for m in members if m.entity_name == name)
    assert member.role_name == "developer" and member.entity_type == "u", member
    await client.update_project_member_role(project, member.id, 3)
    assert (await client.get_project_member(project, member.id)).role_id == 3
    print("members", len(members))

    created = await client.create_robot(
        RobotCreate(
            name="ci",
            level="project",
            duration=-1,
            permissions=[
                RobotPermission(
                    kind="project", namespace=project, access=[Access(resource="repository", action="pull")]
                )
            ],
        )
    )
    assert created.name == f"robot${project}+ci" and created.secret, created
    robots = await client.get_robots(query=f"Level=project,ProjectID={project_id}")
    assert [r.name for r in robots] == [created.name], robots
    robot = await client.get_robot(created.id)
    assert robot.level == "project" and robot.permissions[0].namespace == project, robot
    fresh = await client.refresh_robot_secret(created.id, "")
    assert fresh.secret and fresh.secret != created.secret
    await client.delete_robot(created.id)
    print("robots", created.id)

    perms = await client.get_current_user_permissions(scope=f"/project/{project_id}", relative=True)
    assert any(x.resource == "repository" and x.action == "push" for x in perms), perms

    group = await client.create_usergroup(UserGroup(group_name=f"{project}-oidc-group", group_type=3))
    gid = int(group.rsplit("/", 1)[1])
    assert (await client.get_usergroup(gid)).group_name == f"{project}-oidc-group"
    await client.delete_usergroup(gid)

    config = await client.get_config()
    assert config.auth_mode.value == "db_auth" and config.robot_name_prefix.value == "robot$", config
    await client.update_config(Configurations(token_expiration=31, self_registration=False))
    assert (await client.get_config()).token_expiration.value == 31
    print("config", config.auth_mode.value)

    await client.remove_project_member(project, member.id)
    await client.delete_user(uid)
    print("accounts done")


asyncio.run(main())
