# Python asyncio line echo server (StreamReader.readline): python3 py_echo.py PORT
import asyncio
import sys


async def handle(reader, writer):
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=511)
    async with server:
        await server.serve_forever()

asyncio.run(main())
