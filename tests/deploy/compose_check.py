#!/usr/bin/python3
"""Validates docker-compose.yml with Debian's docker-compose (no engine
needed) and checks the properties the deployment relies on: Redis
persistence and no eviction, a health check on every long-running service,
start order by conditions, a .env.example without a real secret, and that
each cerrojo container gets only CERROJO_* variables its binary reads (the
names its --help lists, from BUILD_DIR/bin).

Usage: compose_check.py SOURCE_DIR BUILD_DIR
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

SERVICES = ("kms", "session", "auth", "gateway")
# Seconds docker-compose gets to render the file.
COMPOSE_TIMEOUT_S = 60
# Seconds a binary gets to print its --help.
HELP_TIMEOUT_S = 30
# Read by every binary outside its settings table (common/config.c).
COMMON_VARIABLES = {"CERROJO_ENV_FILE", "CERROJO_PROFILE"}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def render(source, env_file):
    return subprocess.run(
        ["docker-compose", "-f", os.path.join(source, "docker-compose.yml"),
         "--env-file", env_file, "config"],
        cwd=source, capture_output=True, text=True, timeout=COMPOSE_TIMEOUT_S)


def variables_read(build, program):
    """Returns the variable names that `program --help` lists, one per
    line at the start of a line (cj_config_print_help)."""
    result = subprocess.run(
        [os.path.join(build, "bin", program), "--help"],
        capture_output=True, text=True, timeout=HELP_TIMEOUT_S)
    return set(re.findall(r"^(CERROJO_[A-Z0-9_]+)$", result.stdout,
                          re.MULTILINE))


def check_variables(services, build):
    for name in SERVICES + ("migrate",):
        program = f"cerrojo-{name}"
        if not os.access(os.path.join(build, "bin", program), os.X_OK):
            check(False, f"{program} not built in {build}/bin")
            continue
        known = variables_read(build, program) | COMMON_VARIABLES
        check(len(known) > len(COMMON_VARIABLES),
              f"{program} --help lists no CERROJO_ variable")
        for variable in services[name].get("environment", {}):
            check(not variable.startswith("CERROJO_") or variable in known,
                  f"{name}: {program} does not read {variable}")


def main():
    source = sys.argv[1]
    build = sys.argv[2]
    example = os.path.join(source, ".env.example")

    result = render(source, example)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        print("compose: docker-compose config rejected docker-compose.yml",
              file=sys.stderr)
        return 1
    config = yaml.safe_load(result.stdout)
    services = config["services"]

    redis_command = " ".join(services["redis"].get("command", []))
    check("--appendonly yes" in redis_command,
          "redis: command lacks --appendonly yes")
    check("--maxmemory-policy noeviction" in redis_command,
          "redis: command lacks --maxmemory-policy noeviction")

    for name in ("postgres", "redis") + SERVICES:
        check("healthcheck" in services[name], f"{name}: no healthcheck")
    for name in SERVICES + ("migrate",):
        command = services[name].get("command", [])
        check(command and command[0] == f"cerrojo-{name}",
              f"{name}: command is {command}, expected cerrojo-{name}")

    def condition(name, dependency):
        return services[name].get("depends_on", {}).get(
            dependency, {}).get("condition")

    check(condition("migrate", "postgres") == "service_healthy",
          "migrate must wait for a healthy postgres")
    check(condition("kms", "migrate") == "service_completed_successfully",
          "kms must wait for the migrations to complete")
    check(condition("auth", "migrate") == "service_completed_successfully",
          "auth must wait for the migrations to complete")
    check(condition("session", "redis") == "service_healthy",
          "session must wait for a healthy redis")
    for dependency in ("kms", "session"):
        check(condition("auth", dependency) == "service_healthy",
              f"auth must wait for a healthy {dependency}")
    for dependency in ("kms", "session", "auth", "redis"):
        check(condition("gateway", dependency) == "service_healthy",
              f"gateway must wait for a healthy {dependency}")
    check(services["migrate"].get("restart") == "no",
          "migrate is a one-shot job and must not restart")

    check_variables(services, build)

    published = [name for name, svc in services.items() if svc.get("ports")]
    check(published == ["gateway"],
          f"only the gateway may publish a port, got {published}")
    for port in services["gateway"]["ports"]:
        # docker-compose 1.29 renders the short form "host_ip:port:port".
        host_ip = (port.get("host_ip", "") if isinstance(port, dict)
                   else str(port).split(":")[0])
        check(host_ip == "127.0.0.1",
              f"gateway port {port} must be published on 127.0.0.1 only")

    with open(example, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            match = re.match(r"^([A-Z0-9_]*(PASSWORD|KEY|SECRET)[A-Z0-9_]*)="
                             r"(.*)$", line.strip())
            if match:
                check(match.group(3).startswith("replace-with-") or
                      match.group(3) == "",
                      f".env.example:{number}: {match.group(1)} must be a "
                      "placeholder")

    # A missing required secret must stop the rendering with its name.
    with tempfile.NamedTemporaryFile("w", suffix=".env") as env:
        with open(example, encoding="utf-8") as f:
            env.write("".join(line for line in f
                              if not line.startswith("POSTGRES_PASSWORD=")))
        env.flush()
        clean = {k: v for k, v in os.environ.items()
                 if k != "POSTGRES_PASSWORD"}
        result = subprocess.run(
            ["docker-compose", "-f",
             os.path.join(source, "docker-compose.yml"), "--env-file",
             env.name, "config", "-q"], cwd=source, capture_output=True,
            text=True, timeout=COMPOSE_TIMEOUT_S, env=clean)
        check(result.returncode != 0,
              "docker-compose config accepted a missing POSTGRES_PASSWORD")
        check("POSTGRES_PASSWORD" in result.stderr,
              "the error for a missing password does not name "
              "POSTGRES_PASSWORD")

    for failure in failures:
        print(f"compose: {failure}", file=sys.stderr)
    if failures:
        return 1
    print(f"compose: docker-compose.yml valid; {len(services)} services "
          "checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
