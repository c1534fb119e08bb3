/**
 * The settings every bench proxy child starts from: loopback ACS on a free port, its own data
 * folder, the bench's log level; then the bench's own settings; then BENCH_PROXY_CONFIG, extra
 * settings for an experiment as JSON (e.g. '{"acs.inlineDecodeBytes":0}'), which win.
 */
export function benchProxyOverrides(dataDir: string, logLevel: string, own: Record<string, unknown>): Record<string, unknown> {
  return {
    dataDir,
    'acs.host': '127.0.0.1',
    'acs.port': 0,
    'log.level': logLevel,
    ...own,
    ...(process.env.BENCH_PROXY_CONFIG ? (JSON.parse(process.env.BENCH_PROXY_CONFIG) as Record<string, unknown>) : {}),
  };
}
