#!/usr/bin/env python3
"""Forwards TCP from LISTEN_HOST:LISTEN_PORT to TARGET_HOST:TARGET_PORT.

The e2e flow uses it where a real cluster has DNS and a load balancer in front of a
Service: the quickstart's ACME endpoint announces https://localhost:14000 (its spec's
public name and port), so connections to that address are carried to the Service's
ClusterIP. Test tooling only.

Usage: tcp-forward.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT
"""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(listen_host, listen_port, target_host, target_port):
    async def handle(client_reader, client_writer):
        try:
            reader, writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))

    server = await asyncio.start_server(handle, listen_host, listen_port)
    print(f"forwarding {listen_host}:{listen_port} -> {target_host}:{target_port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    host, port, thost, tport = sys.argv[1:5]
    asyncio.run(main(host, int(port), thost, int(tport)))
