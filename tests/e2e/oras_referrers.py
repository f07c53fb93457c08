"""Drives oras-py against a registry for tests/e2e/clients.rs.

    python oras_referrers.py push HOST:PORT REPOSITORY
    python oras_referrers.py pull HOST:PORT REPOSITORY

Runs in a scratch folder (the current directory); credentials come from
ORAS_USER / ORAS_PASS (oras-py's basic-auth backend answers the 401).

`push` sends `artifact.bin` as an artifact with an `artifactType` (tag `v1`),
then `signature.bin` as a referrer of it (tag `sig`: a manifest whose
`subject` is the artifact, its blob uploaded in several PATCH chunks), and
prints the digests the registry answered and the manifests it serves.
`pull` pulls both tags back into `pulled-artifact/` and `pulled-referrer/`
and prints the files and the repository's tags. Each prints one JSON object
on its last line; the Rust test checks the bytes and lists the referrers.
"""

import hashlib
import json
import sys

import oras.client
import oras.oci

ARTIFACT_TYPE = "application/vnd.berth.e2e.artifact.v1"
REFERRER_TYPE = "application/vnd.berth.e2e.signature.v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def push_with_artifact_type(client, target, files, artifact_type, **kwargs):
    """oras-py 0.2 has no artifactType option; every manifest it pushes
    starts as `oras.oci.NewManifest()`, so that one gets the field."""
    original = oras.oci.NewManifest

    def with_type():
        manifest = original()
        manifest["artifactType"] = artifact_type
        return manifest

    oras.oci.NewManifest = with_type
    try:
        response = client.push(target=target, files=files, quiet=True, **kwargs)
    finally:
        oras.oci.NewManifest = original
    if response.status_code != 201:
        raise SystemExit(f"push {target}: HTTP {response.status_code}: {response.text}")
    return response.headers["Docker-Content-Digest"]


def raw_manifest(client, host, repo, reference):
    url = f"http://{host}/v2/{repo}/manifests/{reference}"
    response = client.do_request(url, "GET", headers={"Accept": OCI_MANIFEST})
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: HTTP {response.status_code}: {response.text}")
    return response.content


def push(client, host, repo):
    base = f"{host}/{repo}"
    artifact_digest = push_with_artifact_type(client, f"{base}:v1", ["artifact.bin"], ARTIFACT_TYPE)
    body = raw_manifest(client, host, repo, artifact_digest)
    if "sha256:" + hashlib.sha256(body).hexdigest() != artifact_digest:
        raise SystemExit(f"the manifest served for {artifact_digest} does not hash to it")
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=artifact_digest, size=len(body))
    referrer_digest = push_with_artifact_type(
        client,
        f"{base}:sig",
        ["signature.bin:" + REFERRER_TYPE],
        REFERRER_TYPE,
        subject=subject,
        manifest_annotations={"org.opencontainers.image.description": "berth e2e referrer"},
        do_chunked=True,
        chunk_size=6 * 1024 * 1024,
    )
    return {
        "artifact_digest": artifact_digest,
        "artifact_manifest": client.get_manifest(f"{base}@{artifact_digest}"),
        "referrer_digest": referrer_digest,
        "referrer_manifest": client.get_manifest(f"{base}@{referrer_digest}"),
    }


def pull(client, host, repo):
    base = f"{host}/{repo}"
    return {
        "pulled_artifact": client.pull(target=f"{base}:v1", outdir="pulled-artifact"),
        "pulled_referrer": client.pull(target=f"{base}:sig", outdir="pulled-referrer"),
        "tags": client.get_tags(base),
    }


def main():
    mode, host, repo = sys.argv[1:4]
    client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
    result = {"push": push, "pull": pull}[mode](client, host, repo)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
