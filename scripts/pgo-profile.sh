#!/usr/bin/env bash
# Writes cmd/alumoutreach/default.pgo, the CPU profile that the go command
# uses for profile-guided optimization of every build of the binary
# (go build's default -pgo=auto), from the benchmarks of the embedded
# default that stand for a running instance's work: sends through the
# pipeline to the sandbox and to SMTP, campaigns, workflows started by
# contact events, contacts created through the API and imported from CSV.
# Each runs on SQLite, one after the other, in a binary built without PGO
# so that the profile describes the code rather than an earlier profile's
# effect. Rerun it after changes that move the hot paths
# (docs/benchmarks.md, "Profile-guided optimization"); it takes about
# two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go test -c -pgo=off -o "$work/app.test" ./internal/app/
go test -c -pgo=off -o "$work/contacts.test" ./internal/contacts/

run() { # name, bench, env...
	local name=$1 bench=$2
	shift 2
	echo "profiling $name" >&2
	(cd internal/app && env "$@" BENCH_CPUPROFILE="$work/$name.prof" \
		"$work/app.test" -test.run '^$' -test.bench "$bench" -test.benchtime 1x >&2)
}
run pipeline-smtp 'BenchmarkPipelineSMTP/sqlite' BENCH_MESSAGES=40000
run pipeline-sandbox 'BenchmarkPipelineSandbox/sqlite' BENCH_MESSAGES=40000
run campaign-smtp 'BenchmarkCampaignSMTP$/sqlite' BENCH_RECIPIENTS=20000
run campaign-sandbox 'BenchmarkCampaignSandbox$/sqlite' BENCH_RECIPIENTS=20000
run workflows 'BenchmarkWorkflowRunsFromContactEvents/import' BENCH_CONTACTS=20000
echo "profiling contacts-api" >&2
(cd internal/app && "$work/app.test" -test.run '^$' -test.bench 'BenchmarkContactCreateAPI/sqlite' \
	-test.benchtime 20000x -test.cpuprofile "$work/contacts-api.prof" >&2)
echo "profiling import" >&2
(cd internal/contacts && BENCH_CONTACTS=100000 "$work/contacts.test" -test.run '^$' \
	-test.bench 'BenchmarkImportCSV/sqlite' -test.benchtime 1x -test.cpuprofile "$work/import.prof" >&2)

go tool pprof -proto "$work"/*.prof >"$root/cmd/alumoutreach/default.pgo"
echo "wrote cmd/alumoutreach/default.pgo ($(wc -c <"$root/cmd/alumoutreach/default.pgo") bytes)" >&2
