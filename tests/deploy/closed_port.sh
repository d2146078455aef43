# shellcheck shell=bash
# Sourced by the deploy tests: a TCP port on 127.0.0.1 that rejects
# connections while the test keeps it. A python3 child binds a socket to
# port 0 without listen(), so the kernel resets every connection attempt
# and no other process can bind the port. A fixed port such as 1 gives no
# such promise, because a host may run a service on it or filter it.

# Maximum time the child holds the port, in seconds, so that it ends even
# when the test dies without calling closed_port_release.
CLOSED_PORT_MAX_HOLD_S=3600
# Seconds closed_port_hold waits for the child to print its port.
CLOSED_PORT_START_TIMEOUT_S=10
CLOSED_PORT=
CLOSED_PORT_PID=

# Starts the child and sets CLOSED_PORT and CLOSED_PORT_PID. Returns 1
# when the child printed no port in time. The child also exits when this
# shell closes the pipe to its stdin.
closed_port_hold() {
    coproc CLOSED_PORT_CHILD {
        exec python3 -c '
import select
import socket
import sys

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
select.select([sys.stdin], [], [], float(sys.argv[1]))
' "$CLOSED_PORT_MAX_HOLD_S"
    }
    CLOSED_PORT_PID=$CLOSED_PORT_CHILD_PID
    read -r -t "$CLOSED_PORT_START_TIMEOUT_S" CLOSED_PORT \
        <&"${CLOSED_PORT_CHILD[0]}" && [[ $CLOSED_PORT =~ ^[0-9]+$ ]]
}

# Ends the child, which frees the port. Safe to call when nothing is held.
closed_port_release() {
    if [[ -n $CLOSED_PORT_PID ]]; then
        kill -TERM "$CLOSED_PORT_PID" 2>/dev/null || true
        wait "$CLOSED_PORT_PID" 2>/dev/null || true
    fi
    CLOSED_PORT_PID=
    CLOSED_PORT=
}
