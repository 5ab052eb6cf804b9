// BENCH_LOOP_REPORT=N (seconds): every N s, one line on stderr with this process's event loop
// delay (p50 / p99 / max, perf_hooks.monitorEventLoopDelay; a timer that fires every 5 ms, so
// 5 ms is no delay at all) and its garbage collector's pauses over that time. To tell a stall
// of one process (Tessera, or the benchmark's own load generator and receivers) from one of
// the database or the machine.
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

/** Starts the report if BENCH_LOOP_REPORT is set; `name` starts each line. */
export function reportEventLoop(name) {
  const every = Number(process.env.BENCH_LOOP_REPORT ?? 0);
  if (!(every > 0)) return;
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  let gcs = 0;
  let gcMs = 0;
  let gcMaxMs = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcs += 1;
      gcMs += entry.duration;
      gcMaxMs = Math.max(gcMaxMs, entry.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  const ms = (ns) => (ns / 1e6).toFixed(1);
  setInterval(() => {
    process.stderr.write(`[${name} ${new Date().toISOString().slice(11, 19)}] event loop delay p50 ${ms(delay.percentile(50))} p99 ${ms(delay.percentile(99))} max ${ms(delay.max)} ms; gc ${gcs} pauses, ${gcMs.toFixed(1)} ms, longest ${gcMaxMs.toFixed(1)} ms; heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MB\n`);
    delay.reset();
    gcs = 0;
    gcMs = 0;
    gcMaxMs = 0;
  }, every * 1000).unref();
}
