"""Drives berth's /api/v2.0 with harborapi, a Harbor client written by
others that validates every response against its models of Harbor's API.

    python harbor_client.py URL USER PASSWORD PROJECT

Prints one line per step; exits non-zero on the first mismatch.
"""

import asyncio
import sys

from harborapi import HarborAsyncClient
from harborapi.exceptions import Conflict, NotFound, Unauthorized
from harborapi.models import ProjectMetadata, ProjectReq


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


asyncio.run(main())
