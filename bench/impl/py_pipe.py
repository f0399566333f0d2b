# Python asyncio: BYTES through a child (cat) and back, every byte compared;
# one task writes (write + drain) while the main task reads.
# python3 py_pipe.py BYTES CMD [ARG...]
import asyncio
import sys
import time

total = int(sys.argv[1])
cmd = sys.argv[2:]
block = bytes((i * 31 + 7) % 251 for i in range(65536))
block2 = memoryview(block + block)


async def writer(p):
    left = total
    while left > 0:
        n = min(left, len(block))
        p.stdin.write(block if n == len(block) else block[:n])
        await p.stdin.drain()
        left -= n
    p.stdin.close()


async def main():
    t0 = time.monotonic()
    p = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.PIPE,
                                             stdout=asyncio.subprocess.PIPE)
    w = asyncio.create_task(writer(p))
    got, ok = 0, True
    while True:
        data = await p.stdout.read(65536)
        if not data:
            break
        o = got % 65536
        if block2[o:o + len(data)] != data:
            ok = False
        got += len(data)
    await w
    await p.wait()
    secs = time.monotonic() - t0
    ok = ok and got == total
    print(f"RESULT mb_per_s={got / secs / 1e6:.1f} bytes={got} verified={'yes' if ok else 'NO'} secs={secs:.3f}")
    sys.exit(0 if ok else 1)

asyncio.run(main())
