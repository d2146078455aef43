#!/usr/bin/env python3
"""A TCP forwarder on 127.0.0.1 that plays the one address through which
the services reach the Redis primary (a Service that follows failover).
Each new connection goes to the host:port written in TARGET_FILE at that
moment, so switching the file moves new connections to the new primary.

Usage: tcp_forward.py LISTEN_PORT TARGET_FILE
"""
import socket
import sys
import threading

# Bytes copied per read.
CHUNK_BYTES = 65536
# Seconds a connection to the target may take.
CONNECT_TIMEOUT_S = 2


def pump(source, destination):
    try:
        while True:
            data = source.recv(CHUNK_BYTES)
            if not data:
                break
            destination.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, destination):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_client(client, target_file):
    with open(target_file, encoding="ascii") as f:
        host, port = f.read().strip().rsplit(":", 1)
    try:
        upstream = socket.create_connection((host, int(port)),
                                            timeout=CONNECT_TIMEOUT_S)
    except OSError as error:
        print(f"forward: {host}:{port} unreachable: {error}", flush=True)
        client.close()
        return
    upstream.settimeout(None)
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    pump(client, upstream)
    client.close()
    upstream.close()


def main():
    port = int(sys.argv[1])
    target_file = sys.argv[2]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    print(f"forward: listening on 127.0.0.1:{port}", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve_client, args=(client, target_file),
                         daemon=True).start()


if __name__ == "__main__":
    main()
