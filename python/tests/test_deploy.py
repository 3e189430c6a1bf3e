"""deploy/ against the server it deploys: the Dockerfile and the Kubernetes manifests (docs/deploy.md) may only use
flags usm-server declares, probe routes it serves, one port throughout, the model path the image holds, and the
libraries scripts/deps.sh installs for the build. Neither file is built or applied here; this reads them."""
import json
import re
import shlex
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml is not installed (pip install pyyaml)")

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
MANIFEST = ROOT / "deploy" / "kubernetes" / "usm-server.yaml"
COMMAND = ROOT / "Server" / "Sources" / "usm-server" / "USMServerCommand.swift"
FLAG_FILES = [COMMAND, ROOT / "Sources" / "USMCommandLine" / "RecognizerFlags.swift"]
SERVER = ROOT / "Server" / "Sources" / "USMServer" / "Server.swift"
DEPS = ROOT / "scripts" / "deps.sh"

# The runtime package (Debian/Ubuntu) of each -dev package scripts/deps.sh installs. A library added there must be
# added here and to both stages of deploy/Dockerfile.
RUNTIME_OF = {
    "libzstd-dev": "libzstd1",
    "libxxhash-dev": "libxxhash0",
    "libsndfile1-dev": "libsndfile1",
    "libsamplerate0-dev": "libsamplerate0",
}


# ---- the server's sources ----

def kebab(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name).lower()


def declared_flags():
    """The long names of every @Option and @Flag of usm-server (its command and its RecognizerFlags group)."""
    flags = set()
    for path in FLAG_FILES:
        text = path.read_text()
        for m in re.finditer(r"@(?:Option|Flag)\b(.*?)\bvar\s+(\w+)", text, re.S):
            custom = re.search(r'\.customLong\("([^"]+)"', m.group(1))
            flags.add(custom.group(1) if custom else kebab(m.group(2)))
    return flags


def get_routes():
    """Paths registered with router.get in the server (the probes are GETs)."""
    return set(re.findall(r'router\.get\("([^"]+)"', SERVER.read_text()))


# ---- deploy/Dockerfile ----

def dockerfile_stages():
    """[(base image, [(INSTRUCTION, argument text)])], comments dropped and continuation lines joined."""
    stages, current, pending = [], None, ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        instruction, _, rest = pending.strip().partition(" ")
        pending = ""
        instruction = instruction.upper()
        if instruction == "FROM":
            current = (rest.split()[0], [])
            stages.append(current)
        else:
            assert current is not None, f"{instruction} before FROM"
            current[1].append((instruction, rest.strip()))
    return stages


def instructions(stage, name):
    return [rest for instruction, rest in stage[1] if instruction == name]


def apt_packages(stage):
    packages = set()
    for run in instructions(stage, "RUN"):
        for command in re.split(r"&&|;", run):
            words = command.split()
            if "apt-get" in words and "install" in words:
                packages |= {w for w in words[words.index("install") + 1:] if not w.startswith("-")}
    return packages


def exec_form(stage, name):
    values = instructions(stage, name)
    assert values, f"the runtime stage has no {name}"
    value = json.loads(values[-1])   # exec form: a JSON array, so no shell sits between the runtime and SIGTERM
    assert isinstance(value, list)
    return value


def runtime_copies(stage):
    """{destination: source} of the runtime stage's COPY instructions from the build context (not --from)."""
    copies = {}
    for rest in instructions(stage, "COPY"):
        words = shlex.split(rest)
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        for source in words[:-1]:
            copies[words[-1]] = source
    return copies


def image_env(stage):
    env = {}
    for rest in instructions(stage, "ENV"):
        for word in shlex.split(rest):
            key, _, value = word.partition("=")
            env[key] = value
    return env


# ---- deploy/kubernetes/usm-server.yaml ----

def manifests():
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def of_kind(kind):
    found = [d for d in manifests() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}"
    return found[0]


def pod_spec():
    return of_kind("Deployment")["spec"]["template"]["spec"]


def container():
    (c,) = [c for c in pod_spec()["containers"] if c["name"] == "usm-server"]
    return c


def container_argv():
    """What the container runs: its command, else the image's ENTRYPOINT; then its args, else the image's CMD."""
    runtime = dockerfile_stages()[-1]
    c = container()
    command = c.get("command", exec_form(runtime, "ENTRYPOINT"))
    if "args" in c:
        args = c["args"]
    elif "command" in c:
        args = []   # a command of its own drops the image's CMD too
    else:
        args = exec_form(runtime, "CMD")
    return [str(a) for a in command + args]


def image_argv():
    runtime = dockerfile_stages()[-1]
    return exec_form(runtime, "ENTRYPOINT") + exec_form(runtime, "CMD")


def options(argv):
    """[(flag, value)] of the long options in argv ('--name value' or '--name=value'; value None for a flag)."""
    result, i = [], 1
    while i < len(argv):
        word = argv[i]
        assert word.startswith("--"), f"{word!r} in {argv} is not a long option"
        name, eq, value = word[2:].partition("=")
        if not eq:
            value = None
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
        result.append((name, value))
        i += 1
    return result


def option(argv, name, default=None):
    values = [v for n, v in options(argv) if n == name]
    assert len(values) <= 1, f"--{name} is given {len(values)} times in {argv}"
    return values[0] if values else default


def resolve_port(port):
    """A probe's or Service's port: a number, or the name of a container port."""
    if isinstance(port, int):
        return port
    (p,) = [p["containerPort"] for p in container()["ports"] if p.get("name") == port]
    return p


# ---- the tests ----

def test_the_flag_parser_reads_the_server():
    flags = declared_flags()
    assert {"host", "port", "model", "max-concurrent", "max-queue", "max-streams", "idle-timeout", "token",
            "threads", "beam"} <= flags
    assert "models" not in flags   # the property behind --model (customLong)


def test_every_flag_is_one_the_server_declares():
    flags = declared_flags()
    for argv in (container_argv(), image_argv()):
        assert Path(argv[0]).name == "usm-server"
        unknown = [n for n, _ in options(argv) if n not in flags]
        assert not unknown, f"usm-server declares no --{', --'.join(unknown)} (argv: {argv})"


def test_probes_use_routes_the_server_serves():
    routes = get_routes()
    c = container()
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in c:
            assert c[probe]["httpGet"]["path"] in routes, f"{probe} asks for a route the server does not serve"
    annotations = of_kind("Deployment")["spec"]["template"]["metadata"].get("annotations", {})
    if "prometheus.io/path" in annotations:
        assert annotations["prometheus.io/path"] in routes


def test_one_port_on_all_interfaces():
    argv = container_argv()
    assert option(argv, "host") == "0.0.0.0", "in a container the server must listen beyond loopback"
    port = int(option(argv, "port", "8080"))
    c = container()
    assert [p["containerPort"] for p in c["ports"]] == [port]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in c:
            assert resolve_port(c[probe]["httpGet"]["port"]) == port
    (service_port,) = of_kind("Service")["spec"]["ports"]
    assert resolve_port(service_port["targetPort"]) == port
    annotations = of_kind("Deployment")["spec"]["template"]["metadata"].get("annotations", {})
    if "prometheus.io/port" in annotations:
        assert int(annotations["prometheus.io/port"]) == port
    runtime = dockerfile_stages()[-1]
    exposed = {int(p.split("/")[0]) for rest in instructions(runtime, "EXPOSE") for p in rest.split()}
    assert exposed == {port}
    assert int(option(image_argv(), "port")) == port


def test_cpu_request_is_the_recognition_threads():
    argv = container_argv()
    threads = int(option(argv, "max-concurrent")) * int(option(argv, "threads", "1"))
    cpu = str(container()["resources"]["requests"]["cpu"])
    millicores = int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)
    assert millicores == threads * 1000


def test_models_are_where_the_image_or_a_volume_puts_them():
    runtime = dockerfile_stages()[-1]
    copies = runtime_copies(runtime)
    mounts = [m["mountPath"].rstrip("/") + "/" for m in container().get("volumeMounts", [])]
    for argv in (container_argv(), image_argv()):
        paths = [v.partition("=")[2] for n, v in options(argv) if n == "model"]
        assert paths, f"no --model in {argv}"
        for path in paths:
            if path in copies:
                assert (ROOT / copies[path]).is_file(), f"the Dockerfile copies {copies[path]}, which is missing"
            else:
                assert any(path.startswith(m) for m in mounts), f"{path} is neither in the image nor on a volume"
    # the fallback without --model is a model the image holds
    assert image_env(runtime)["USM_INFER_MODEL"] in copies
    assert "USM_INFER_MODEL" in COMMAND.read_text()


def test_the_image_carries_the_libraries_the_build_links():
    wanted = set(re.findall(r"need\+=\(([\w.+-]+)\)", DEPS.read_text())) - {"pkg-config"}
    assert wanted, "no packages found in scripts/deps.sh"
    build, runtime = dockerfile_stages()[0], dockerfile_stages()[-1]
    missing = wanted - apt_packages(build)
    assert not missing, f"the build stage does not install {sorted(missing)}"
    unmapped = wanted - RUNTIME_OF.keys()
    assert not unmapped, f"no runtime package known for {sorted(unmapped)}: add it to RUNTIME_OF and the runtime stage"
    missing = {RUNTIME_OF[p] for p in wanted} - apt_packages(runtime)
    assert not missing, f"the runtime stage does not install {sorted(missing)}"
    assert not {p for p in apt_packages(runtime) if p.endswith("-dev")}, "the runtime stage installs -dev packages"


def test_the_build_stage_builds_the_server_with_a_new_enough_toolchain():
    build = dockerfile_stages()[0]
    image = re.fullmatch(r"swift:(\d+)\.(\d+)[.\w-]*", build[0])
    assert image, f"the build stage is not an official swift image: {build[0]}"
    for manifest in (ROOT / "Package.swift", ROOT / "Server" / "Package.swift"):
        tools = re.match(r"// swift-tools-version:\s*(\d+)\.(\d+)", manifest.read_text())
        assert tuple(map(int, tools.groups())) <= tuple(map(int, image.groups())), f"{manifest} needs a newer image"
    runs = " ".join(instructions(build, "RUN"))
    assert "--package-path Server" in runs and "--product usm-server" in runs and "-c release" in runs


def test_env_names_are_the_servers():
    source = COMMAND.read_text()
    for variable in container().get("env", []):
        assert f'"{variable["name"]}"' in source, f"usm-server does not read {variable['name']}"


def test_the_grace_period_covers_the_prestop_sleep():
    spec = pod_spec()
    sleep = container().get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    assert spec["terminationGracePeriodSeconds"] >= sleep + 30, "under 30 s left to drain after the preStop sleep"


def dockerignore_excludes(path, patterns):
    """Whether a .dockerignore pattern list (no '!' exceptions) leaves path, or a folder above it, out."""
    parts = path.split("/")
    for pattern in patterns:
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            return True
    return False


def test_dockerignore_keeps_the_build_inputs_and_drops_build_folders():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip().strip("/") for p in lines if p.strip() and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not modelled by this test"
    for needed in ("Package.swift", "Sources/USMRecognizer", "Server/Package.swift", "Server/Sources/usm-server",
                   "Tests/USMModelTests", "Models/usm-infer-default.usm"):
        assert not dockerignore_excludes(needed, patterns), f".dockerignore leaves out {needed}"
    for dropped in (".git", ".build/release", ".build-address", "Server/.build/release", "python/tests/__pycache__"):
        assert dockerignore_excludes(dropped, patterns), f".dockerignore keeps {dropped}"


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_the_manifests_match_the_kubernetes_schemas(version):
    # optional (pip install kubernetes-validate); 1.30: the first release with the preStop sleep action on by default
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    for resource in manifests():
        kubernetes_validate.validate(resource, version, strict=True)
