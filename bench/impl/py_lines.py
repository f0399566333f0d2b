# Python asyncio: count the lines of stdin (a pipe) with StreamReader.readline.
import asyncio
import sys
import time


async def main():
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    lines = nbytes = 0
    while line := await reader.readline():
        lines += 1
        nbytes += len(line) - (1 if line.endswith(b"\n") else 0)
    secs = time.monotonic() - t0
    print(f"RESULT lines_per_s={lines / secs:.0f} mb_per_s={(nbytes + lines) / secs / 1e6:.1f} "
          f"lines={lines} bytes={nbytes} secs={secs:.3f}")

asyncio.run(main())
