// netcheck: the tiny test program of the e2e harness's real node (e2e/node-smoke.sh),
// packed FROM scratch into an image by scripts/tools/node-images.sh. Standard library only.
module pkiplane.dev/e2e/netcheck

go 1.25.0
