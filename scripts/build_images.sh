#!/usr/bin/env bash
# Build and push the training and inference images (multi-stage Dockerfiles, pinned bases) with an
# SBOM and provenance attestation, and write their digests to build/images.json:
#   {"training": "sha256:...", "inference": "sha256:..."}
# Everything after this step names the images by digest (Terraform's image_digests).
#
#   REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com/<name> TAG=<git sha> bash scripts/build_images.sh
#   DRY_RUN=1 ... prints the build commands (no Docker engine on the development machines).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REGISTRY=${REGISTRY:?set REGISTRY to the ECR repository prefix (terraform output image_repositories)}
TAG=${TAG:?set TAG to the commit being deployed}
OUT=${OUT:-$REPO/build}
mkdir -p "$OUT"

declare -A DOCKERFILES=([training]=workloads/training/Dockerfile [inference]=workloads/inference/Dockerfile)
echo "{" >"$OUT/images.json.partial"
separator=""
for image in training inference; do
  command=(docker buildx build --file "${DOCKERFILES[$image]}" --tag "$REGISTRY/$image:$TAG"
    --sbom=true --provenance=mode=max --push --metadata-file "$OUT/$image.metadata.json" "$REPO")
  if [[ -n "${DRY_RUN:-}" ]]; then
    echo "${command[*]}"
    digest="sha256:$(printf '%s' "$image:$TAG" | sha256sum | cut -d' ' -f1)"  # placeholder, dry run only
  else
    "${command[@]}"
    digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$OUT/$image.metadata.json")
  fi
  [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "no digest for $image: $digest" >&2; exit 1; }
  printf '%s  "%s": "%s"' "$separator" "$image" "$digest" >>"$OUT/images.json.partial"
  separator=$',\n'
done
printf '\n}\n' >>"$OUT/images.json.partial"
mv "$OUT/images.json.partial" "$OUT/images.json"
cat "$OUT/images.json"
