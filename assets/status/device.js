// The device console (#/device/<key>): identity and online state, the Device:2 tree as the device's
// USP Agent serves it (one API call per expanded object), actions as northbound tasks, queued RPCs,
// subscriptions, learned capabilities and the translation trace (docs/operating.md "Device console").
import { h } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);
const POLL_MS = 5000;
const TASK_WAIT_MS = 60_000;

const when = (t) => (t ? new Date(t).toLocaleString() : '-');
const enc = encodeURIComponent;

/** The CPE's address as the proxy knows it: the host of its ConnectionRequestURL, and its NAT binding. */
function cpeAddress(d) {
  let host = '';
  try {
    host = d.connectionRequestUrl ? new URL(d.connectionRequestUrl).host : '';
  } catch {
    host = '';
  }
  const nat = d.reach?.udpConnectionRequestAddress;
  return [host, nat && `UDP ${nat}`].filter(Boolean).join(', ') || '-';
}

// A dual-stack CPE's own USP agent and its migration (docs/migration.md), from the admin device view.
function nativeAgent(det) {
  if (!det) return 'not checked';
  return det.dualStack ? `${det.endpointId} (${det.protocols.join(', ') || 'no protocol listed'})` : `none (${det.reason})`;
}

function migrationState(m) {
  if (!m) return '-';
  const to = m.nativeEndpointId ? ` → ${m.nativeEndpointId}` : '';
  return `${m.phase}${to}${m.reason ? ` (${m.reason})` : ''}`;
}

function Identity({ d }) {
  const rows = [
    ['OUI', d.deviceId.oui],
    ['Manufacturer', d.deviceId.manufacturer],
    ['Product class', d.deviceId.productClass],
    ['Serial number', d.deviceId.serialNumber],
    ['Software version', d.softwareVersion ?? '-'],
    ['Data model', d.rootModel === 'Device' ? 'Device:2 (TR-181)' : `${d.rootModel} (TR-098, mapped to Device:2)`],
    ['Agent Endpoint ID', d.endpointId],
    ['Last Inform', when(d.lastInform)],
    ['CPE address', cpeAddress(d)],
    ['Wake-up', d.reach?.transports.join(' → ') || '-'],
    ['Tags', (d.tags ?? []).join(', ') || '-'],
    ['Own USP agent', nativeAgent(d.migration?.detection)],
    ['Migration', migrationState(d.migration?.migration)],
  ];
  const cr = d.lastConnectionRequest;
  return html`<div class="panel" data-panel="identity">
    <h2>Identity</h2>
    <p data-state=${d.state}>
      <strong class=${d.inSession ? 'session' : d.state}>${d.inSession ? 'in CWMP session' : d.state}</strong>
      ${cr && html`<span class="muted"> — last connection request ${cr.ok ? 'answered' : `failed (${cr.detail ?? ''})`} at ${when(cr.at)}</span>`}
    </p>
    <dl class="kv">${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
  </div>`;
}

function Actions({ d, task }) {
  const [url, setUrl] = useState('');
  return html`<div class="panel" data-panel="actions">
    <h2>Actions</h2>
    <div class="actions">
      <button data-action="connectionRequest" onClick=${() => task({ type: 'connectionRequest' })}>Connection request</button>
      <button data-action="reboot" onClick=${() => confirm(`Reboot ${d.endpointId}?`) && task({ type: 'reboot' })}>Reboot</button>
      <button data-action="factoryReset" onClick=${() => confirm(`Factory reset ${d.endpointId}? Its configuration is lost.`) && task({ type: 'factoryReset' })}>
        Factory reset
      </button>
    </div>
    <form class="row" onSubmit=${(e) => {
      e.preventDefault();
      if (url) task({ type: 'download', url });
    }}>
      <input type="url" name="firmware" placeholder="firmware image URL (http, https, ftp)" value=${url} onInput=${(e) => setUrl(e.target.value)} />
      <button type="submit" data-action="download">Download</button>
    </form>
  </div>`;
}

function ParamRow({ p, onSet }) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(p.value ?? '');
  const [busy, setBusy] = useState(false);
  const name = p.path.slice(p.path.lastIndexOf('.') + 1);
  return html`<li class="param" data-param=${p.path}>
    <span class="name" title=${p.path}>${name}</span>
    ${
      editing
        ? html`<form class="row" onSubmit=${async (e) => {
            e.preventDefault();
            setBusy(true);
            const ok = await onSet(p.path, value);
            setBusy(false);
            if (ok) setEditing(false);
          }}>
            <input name="value" aria-label=${`new value of ${p.path}`} value=${value} onInput=${(e) => setValue(e.target.value)} />
            <button type="submit" disabled=${busy}>${busy ? 'Setting…' : 'Save'}</button>
            <button type="button" onClick=${() => setEditing(false)}>Cancel</button>
          </form>`
        : html`<span class="value">${p.value ?? html`<span class="muted">(not reported)</span>`}</span>`
    }
    <span class="muted type">${p.type}${p.writable ? ', writable' : ''}</span>
    ${p.writable && !editing && html`<button class="small" data-set=${p.path} onClick=${() => (setValue(p.value ?? ''), setEditing(true))}>Set</button>`}
    ${p.native?.length > 0 && html`<div class="native muted">native: ${p.native.join(', ')}</div>`}
  </li>`;
}

/** One object or table of the tree: read when expanded, again on refresh. */
function ObjectNode({ path, table, ctx, open: openAtStart = false }) {
  const [open, setOpen] = useState(openAtStart);
  const [data, setData] = useState(null);
  const [error, setError] = useState('');
  const [loading, setLoading] = useState(false);
  const load = useCallback(async () => {
    setLoading(true);
    try {
      setData(await ctx.get(`/api/devices/${enc(ctx.key)}/parameters?path=${enc(path)}`));
      setError('');
    } catch (e) {
      setError(e.message);
    }
    setLoading(false);
  }, [path, ctx]);
  useEffect(() => {
    if (open && !data && !loading) load();
  }, [open]);
  const refresh = async () => {
    // A refresh learns the subtree's names again on the device (NBI refresh task), then reads it here.
    const natives = ctx.nativeRoot(data, path);
    setLoading(true);
    if (natives) await ctx.task({ type: 'refresh', object: natives }, true);
    await load();
  };
  const name = path.replace(/\.$/, '').split('.').pop();
  return html`<li class="obj" data-object=${path}>
    <button class="toggle" aria-expanded=${open} onClick=${() => setOpen(!open)}>${open ? '▾' : '▸'} ${name}${table ? ' (table)' : ''}</button>
    ${open && html`<button class="small" data-refresh=${path} onClick=${refresh}>refresh</button>`}
    ${loading && html`<span class="muted"> reading…</span>`}
    ${error && html`<div class="error">${error}</div>`}
    ${
      open &&
      data &&
      html`<ul class="tree">
        ${data.params.map((p) => html`<${ParamRow} key=${p.path} p=${p} onSet=${async (pp, v) => (await ctx.set(pp, v)) && ((await load(), true))} />`)}
        ${data.children.map((c) => html`<${ObjectNode} key=${c.path} path=${c.path} table=${c.table} ctx=${ctx} />`)}
        ${data.params.length === 0 && data.children.length === 0 && html`<li class="muted">empty</li>`}
      </ul>`
    }
  </li>`;
}

function Tree({ ctx, initial }) {
  const [query, setQuery] = useState(initial ?? '');
  const [roots, setRoots] = useState([initial ?? 'Device.']);
  return html`<div class="panel wide" data-panel="tree">
    <h2>Device:2 parameters, as a controller sees them</h2>
    <form class="row" onSubmit=${(e) => {
      e.preventDefault();
      const q = query.trim();
      if (!q) return setRoots(['Device.']);
      // A parameter path opens its object.
      setRoots([q.endsWith('.') ? q : q.slice(0, q.lastIndexOf('.') + 1)]);
    }}>
      <input type="search" name="path" placeholder="path, e.g. Device.DeviceInfo." aria-label="open a path" value=${query} onInput=${(e) => setQuery(e.target.value)} />
      <button type="submit">Open</button>
    </form>
    <ul class="tree root">${roots.map((r) => html`<${ObjectNode} key=${r} path=${r} ctx=${ctx} open=${r !== 'Device.'} />`)}</ul>
  </div>`;
}

function Trace({ entries }) {
  return html`<div class="panel wide" data-panel="trace">
    <h2>Translation trace (last ${entries.length} requests, newest first; no values are kept)</h2>
    ${
      entries.length === 0
        ? html`<p class="muted">no USP request to this agent since the proxy started</p>`
        : html`<div class="scroll"><table>
          <thead><tr><th>Time</th><th>From</th><th>Request</th><th>CWMP RPCs</th><th>Answer</th><th>ms</th></tr></thead>
          <tbody>${entries.map(
            (e) => html`<tr data-trace=${e.msgType}>
              <td>${new Date(e.time).toLocaleTimeString()}</td>
              <td class="wrap">${e.fromId}</td>
              <td class="wrap">${e.msgType} ${e.paths.join(' ')}${e.pathCount > e.paths.length ? ` (+${e.pathCount - e.paths.length})` : ''}</td>
              <td class="wrap">${
                e.rpcs.length === 0
                  ? html`<span class="muted">none</span>`
                  : e.rpcs.map(
                      (r) =>
                        html`<div data-rpc=${r.method}>${r.method} ×${r.names} ${r.ms === null ? 'running' : `${r.ms} ms`}${
                          r.fault ? html` <span class="error">Fault ${r.fault}</span>` : r.error ? html` <span class="error">${r.error}</span>` : ''
                        }</div>`,
                    )
              }${e.rpcsNotListed ? html`<div class="muted">+${e.rpcsNotListed} more</div>` : ''}</td>
              <td class=${e.outcome === 'ok' ? 'online' : 'error'}>${e.outcome}</td>
              <td>${e.ms}</td>
            </tr>`,
          )}</tbody>
        </table></div>`
    }
  </div>`;
}

function Work({ d, tasks }) {
  return html`<div class="panel" data-panel="work">
    <h2>Queued RPCs (${d.queue.length}) and tasks</h2>
    ${d.queue.length === 0 ? html`<p class="muted">no RPC queued</p>` : html`<ul>${d.queue.map((q) => html`<li>${q.method} <span class="muted">queued ${when(q.createdAt)}</span></li>`)}</ul>`}
    ${
      tasks.length > 0 &&
      html`<ul data-tasks>${tasks.map(
        (t) =>
          html`<li data-task=${t.type}>${t.type}: <span class=${t.status === 'failed' ? 'error' : ''}>${t.status}</span>${t.error ? ` (${t.error})` : ''}${t.fault ? ` (Fault ${t.fault.faultCode})` : ''}</li>`,
      )}</ul>`
    }
  </div>`;
}

function Subscriptions({ d, openPath }) {
  const subs = d.valueChange ?? [];
  return html`<div class="panel" data-panel="subscriptions">
    <h2>ValueChange subscriptions (${subs.length})</h2>
    ${subs.length === 0 ? html`<p class="muted">none</p>` : ''}
    <ul>${subs.map((s) => html`<li>${s.id || s.subscription} → ${s.recipient}: ${s.referenceList.join(', ')} <span class="muted">(${s.servedBy ?? 'not set up'}${s.pollIntervalS ? `, polled every ${s.pollIntervalS} s` : ''})</span></li>`)}</ul>
    <button class="small" onClick=${() => openPath('Device.LocalAgent.Subscription.')}>all subscriptions in the tree</button>
  </div>`;
}

function Capabilities({ c }) {
  if (!c) return null;
  const rows = [
    ['Model', c.model],
    ['Known parameters', c.knownParameters],
    ['GPV batch size', c.gpvBatchSize],
    ['Partial paths', c.partialPaths],
    ['SetParameterAttributes', c.setParameterAttributes],
    ['GPN NextLevel=false at the root', c.rootNextLevelFalse],
    ['RPC methods', c.rpcMethods ? c.rpcMethods.join(' ') : 'not asked yet'],
    ['Failures in back-off', c.failures ? c.failures.length : '-'],
  ];
  return html`<div class="panel" data-panel="capabilities">
    <h2>Learned capabilities</h2>
    <dl class="kv">${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${String(v)}</dd>`)}</dl>
  </div>`;
}

/** For a refresh: the device's own object path of a tree node (Device:2: the same; TR-098: the deepest object over its native names). */
function nativeRoot(rootModel) {
  return (data, path) => {
    if (rootModel === 'Device') return path.startsWith('Device.LocalAgent.') || path.startsWith('Device.BulkData.') ? null : path;
    const natives = (data?.params ?? []).flatMap((p) => p.native ?? []);
    if (natives.length === 0) return null;
    let prefix = natives[0].slice(0, natives[0].lastIndexOf('.') + 1);
    for (const n of natives) while (!n.startsWith(prefix)) prefix = prefix.slice(0, prefix.slice(0, -1).lastIndexOf('.') + 1);
    return prefix || null;
  };
}

export function DevicePage({ deviceKey, token, api, onAuth }) {
  const [d, setD] = useState(null);
  const [tasks, setTasks] = useState([]);
  const [trace, setTrace] = useState([]);
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const [treeKey, setTreeKey] = useState(0);
  const [openPath, setOpenPath] = useState(null);
  const base = `/api/devices/${enc(deviceKey)}`;
  const fail = (e) => {
    if (e.auth) onAuth();
    setError(e.message);
  };
  const load = useCallback(async () => {
    try {
      const [dd, t, tr] = await Promise.all([api(base, token), api(`${base}/tasks`, token), api(`${base}/trace`, token)]);
      setD(dd);
      setTasks(t.tasks);
      setTrace(tr.entries);
      setError('');
    } catch (e) {
      fail(e);
    }
  }, [deviceKey, token]);
  useEffect(() => {
    load();
    const t = setInterval(load, POLL_MS);
    return () => clearInterval(t);
  }, [load]);

  // Queues a task; `wait`: until it finished (a refresh before the tree reads again), at most TASK_WAIT_MS.
  const task = async (body, wait) => {
    try {
      let t = await api(`${base}/tasks`, token, body);
      if (!wait) setNote(`${body.type}: task ${t.id} ${t.status}`);
      const end = Date.now() + TASK_WAIT_MS;
      while (wait && (t.status === 'queued' || t.status === 'running') && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 500));
        t = await api(`/api/tasks/${enc(t.id)}`, token);
      }
      await load();
      return true;
    } catch (e) {
      fail(e);
      return false;
    }
  };
  const ctx = {
    key: deviceKey,
    get: (p) => api(p, token),
    set: async (path, value) => {
      try {
        await api(`${base}/parameters`, token, { path, value });
        setNote(`${path} set`);
        await load();
        return true;
      } catch (e) {
        fail(e);
        return false;
      }
    },
    task,
    nativeRoot: nativeRoot(d?.rootModel),
  };

  return html`
    <header><a class="back" href="#/">← fleet</a><h1>${d?.endpointId ?? deviceKey}</h1></header>
    <main class="device">
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${note && html`<p class="note" role="status">${note}</p>`}
      ${
        !d
          ? !error && html`<p class="muted">Loading…</p>`
          : html`<section class="panels">
              <${Identity} d=${d} />
              <${Actions} d=${d} task=${task} />
              <${Work} d=${d} tasks=${tasks} />
              <${Subscriptions} d=${d} openPath=${(p) => (setOpenPath(p), setTreeKey(treeKey + 1))} />
              <${Capabilities} c=${d.capabilities} />
            </section>
            <${Tree} key=${treeKey} ctx=${ctx} initial=${openPath} />
            <${Trace} entries=${trace} />`
      }
    </main>`;
}
