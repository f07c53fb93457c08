"""Pushes and pulls a Helm chart with Helm itself (the Helm v4 SDK that
PyPI's helm-python-sdk bundles), through oci:// against berth.

    python helm_chart.py HOST:PORT USER PASSWORD PROJECT WORKDIR

Makes chart `webapp` 0.3.0 (a README, values, a dependency on a subchart
`cache`), pushes it, pulls it back, and prints the pushed digest last.
"""

import os
import sys

import helm_python as helm


def main() -> None:
    host, user, password, project, work = sys.argv[1:6]
    charts = os.path.join(work, "src")
    os.makedirs(charts, exist_ok=True)
    helm.Chart.create("webapp", charts)
    chart_dir = os.path.join(charts, "webapp")
    helm.Chart.create("cache", os.path.join(chart_dir, "charts"))
    with open(os.path.join(chart_dir, "Chart.yaml"), "a") as f:
        f.write("dependencies:\n  - name: cache\n    version: 0.1.0\n    repository: oci://example.test/charts\n")
    with open(os.path.join(chart_dir, "README.md"), "w") as f:
        f.write("# webapp\n\nServes the web.\n")
    archive = helm.package(chart_dir, destination=work, version="0.3.0")
    print("packaged", os.path.basename(archive))

    client = helm.RegistryClient(plain_http=True, credentials_file=os.path.join(work, "registry.json"))
    client.login(host, user, password, plain_http=True)
    pushed = client.push(archive, f"oci://{host}/{project}", plain_http=True)
    print("pushed", pushed)
    print("tags", client.tags(f"oci://{host}/{project}/webapp"))
    out = os.path.join(work, "pulled")
    os.makedirs(out, exist_ok=True)
    client.pull(f"oci://{host}/{project}/webapp", version="0.3.0", destination=out, plain_http=True)
    pulled = os.listdir(out)
    assert pulled == ["webapp-0.3.0.tgz"], pulled
    print("pulled", pulled[0])
    resolved = client.resolve(f"oci://{host}/{project}/webapp:0.3.0")
    print("digest", resolved["digest"])


if __name__ == "__main__":
    main()
