// The status page: a fleet overview and a device table, from the admin API (/api/*, bearer token);
// a click on a device opens its console (#/device/<key>, device.js). The token is asked once and
// kept in this tab's sessionStorage; the page itself holds no data.
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { DevicePage } from './device.js';
import { newestErrors } from './errors.js';

const html = htm.bind(h);
const TOKEN_KEY = 'cwmp-usp-proxy-token';

/** GET (or, with a body, POST) on the admin API; a refused token throws with `auth`, other errors carry the API's message. */
export async function api(path, token, body) {
  const init = { headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) throw Object.assign(new Error('the token was refused'), { auth: true });
  if (!res.ok) {
    const detail = await res.json().then(
      (j) => j.error,
      () => '',
    );
    throw Object.assign(new Error(`${detail || path}${detail ? '' : `: HTTP ${res.status}`}`), { status: res.status });
  }
  return res.json();
}

/** The hash route: "#/device/<key>" opens that device's console. */
function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const m = /^#\/device\/(.+)$/.exec(hash);
  return m ? { device: decodeURIComponent(m[1]) } : {};
}

const stateOf = (x) => (x.inSession ? 'in session' : (x.state ?? (x.online ? 'online' : 'offline')));
const stateClass = (x) => (x.inSession ? 'session' : (x.state ?? (x.online ? 'online' : 'offline')));

function Spark({ values, label }) {
  const max = Math.max(1, ...values);
  const w = 300;
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(58 - (v / max) * 54).toFixed(1)}`).join(' ');
  const total = values.reduce((a, b) => a + b, 0);
  return html`<div class="panel" data-chart=${label}>
    <h2>${label} (last hour) — ${total} in total, now ${values[values.length - 1] ?? 0}/min</h2>
    <svg class="spark" viewBox="0 0 ${w} 60" preserveAspectRatio="none" role="img" aria-label=${label}>
      <polyline fill="none" stroke="#1a5fd0" stroke-width="2" points=${points} />
    </svg>
  </div>`;
}

function Login({ onToken, error }) {
  const [value, setValue] = useState('');
  return html`<main>
    <div class="panel">
      <h2>Admin token</h2>
      <p class="muted">Enter the admin token (config <code>admin.token</code>; logged at start when generated).</p>
      <form onSubmit=${(e) => {
        e.preventDefault();
        onToken(value);
      }}>
        <input type="password" name="token" placeholder="token" value=${value} onInput=${(e) => setValue(e.target.value)} />
        <button type="submit">Open</button>
      </form>
      ${error && html`<p class="error">${error}</p>`}
    </div>
  </main>`;
}

// Rollouts to the devices' native USP agents: newest first, with what failed and why.
function Migrations({ m }) {
  const rollouts = [...(m.rollouts ?? [])].reverse();
  return html`<div class="panel" data-panel="migration">
    <h2>Migration to native USP</h2>
    <p class="muted">${m.configured ? `${m.inProgress} device migration(s) in progress` : 'not configured (docs/migration.md)'}</p>
    ${
      rollouts.length === 0
        ? html`<p class="muted">no rollout</p>`
        : html`<ul>${rollouts.map(
            (r) => html`<li data-rollout=${r.id}>
              <strong>${r.id}</strong> ${r.status}${r.reason ? ` (${r.reason})` : ''}: wave ${r.wave}/${r.waves}, ${r.migrated} migrated,
              ${r.failed.length} failed, ${r.running} running, ${r.pending} pending of ${r.total}
              ${r.failed.length > 0 && html`<ul>${r.failed.slice(0, 10).map((f) => html`<li><a href=${`#/device/${encodeURIComponent(f.deviceKey)}`}>${f.deviceKey}</a>: ${f.reason}</li>`)}</ul>`}
            </li>`,
          )}</ul>`
    }
  </div>`;
}

function App() {
  const [token, setToken] = useState(sessionStorage.getItem(TOKEN_KEY) ?? '');
  const route = useRoute();
  const [summary, setSummary] = useState(null);
  const [devices, setDevices] = useState(null);
  const [migration, setMigration] = useState(null);
  const [search, setSearch] = useState('');
  const [error, setError] = useState('');

  useEffect(() => {
    if (!token || route.device) return undefined;
    let stop = false;
    const load = async () => {
      try {
        const [s, d, m] = await Promise.all([
          api('/api/summary', token),
          api(`/api/devices?limit=200&search=${encodeURIComponent(search)}`, token),
          // Migrations to native USP agents (docs/migration.md); an older proxy has no such route.
          api('/api/migration', token).catch((e) => (e.auth ? Promise.reject(e) : null)),
        ]);
        if (stop) return;
        setSummary(s);
        setDevices(d);
        setMigration(m);
        setError('');
      } catch (e) {
        if (stop) return;
        if (e.auth) {
          sessionStorage.removeItem(TOKEN_KEY);
          setToken('');
        }
        setError(e.message);
      }
    };
    load();
    const t = setInterval(load, 5000);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, [token, search, route.device]);
  const onAuth = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken('');
  };

  if (!token)
    return html`<${Login} error=${error} onToken=${(t) => {
      sessionStorage.setItem(TOKEN_KEY, t);
      setToken(t);
    }} />`;
  if (route.device) return html`<${DevicePage} key=${route.device} deviceKey=${route.device} token=${token} api=${api} onAuth=${onAuth} />`;
  if (!summary || !devices) return html`<main><p class="muted">Loading…</p>${error && html`<p class="error">${error}</p>`}</main>`;
  const d = summary.devices;
  const byModel = Object.entries(d.byRootModel ?? {});
  const byClass = Object.entries(d.byProductClass ?? {});
  return html`
    <header><h1>cwmp-usp-proxy</h1><span class="muted">fleet status</span></header>
    <main>
      ${error && html`<p class="error">${error}</p>`}
      <section class="cards" aria-label="fleet">
        <div class="card" data-count="total"><div class="n">${d.total}</div><div class="l">devices</div></div>
        <div class="card" data-count="online"><div class="n online">${d.online}</div><div class="l">online</div></div>
        <div class="card" data-count="offline"><div class="n offline">${d.offline}</div><div class="l">offline</div></div>
        <div class="card" data-count="inSession"><div class="n session">${d.inSession}</div><div class="l">in CWMP session</div></div>
        ${byModel.map(([m, n]) => html`<div class="card" data-model=${m}><div class="n">${n}</div><div class="l">${m === 'Device' ? 'TR-181 (Device:2)' : 'TR-098 (IGD)'}</div></div>`)}
      </section>
      <section class="panels">
        <${Spark} label="Informs/min" values=${summary.informsPerMinute ?? []} />
        <${Spark} label="USP requests/min" values=${summary.uspRequestsPerMinute ?? []} />
        <div class="panel" data-panel="errors">
          <h2>Recent errors</h2>
          ${
            (summary.recentErrors ?? []).length === 0
              ? html`<p class="muted">none</p>`
              : html`<ul class="errors">${newestErrors(summary.recentErrors, 20).map(
                  (e) =>
                    html`<li data-error-time=${e.time}>
                      <span class="muted">${new Date(e.time).toLocaleTimeString()}</span>
                      ${e.device && html` <a class="who" href=${`#/device/${encodeURIComponent(e.device)}`}>${e.device}</a>`}
                      ${e.fromId && html` <span class="who">from ${e.fromId}</span>`} ${e.message}
                    </li>`,
                )}</ul>`
          }
        </div>
        ${migration && html`<${Migrations} m=${migration} />`}
        <div class="panel" data-panel="classes">
          <h2>By product class</h2>
          <ul>${byClass.map(([c, n]) => html`<li>${c}: ${n}</li>`)}</ul>
        </div>
      </section>
      <section class="panel">
        <h2>Devices (${devices.total})</h2>
        <input type="search" placeholder="search Endpoint ID, serial, product class…" aria-label="search devices" value=${search} onInput=${(e) => setSearch(e.target.value)} />
        <div class="scroll"><table class="devices">
          <thead><tr><th>Endpoint ID</th><th>Manufacturer</th><th>Product class</th><th>Serial</th><th>Model</th><th>Last Inform</th><th>State</th><th>Queued</th><th>Wake-up</th></tr></thead>
          <tbody>
            ${devices.devices.map(
              (x) => html`<tr data-device=${x.endpointId} class="link" onClick=${() => (location.hash = `#/device/${encodeURIComponent(x.deviceKey)}`)}>
                <td><a href=${`#/device/${encodeURIComponent(x.deviceKey)}`}>${x.endpointId}</a></td><td>${x.deviceId.manufacturer}</td><td>${x.deviceId.productClass}</td><td>${x.deviceId.serialNumber}</td>
                <td>${x.rootModel}</td><td>${x.lastInform ? new Date(x.lastInform).toLocaleString() : '-'}</td>
                <td class=${stateClass(x)}>${stateOf(x)}</td>
                <td>${x.queuedRpcs}</td>
                <td title=${x.reach?.udpConnectionRequestAddress ?? x.reach?.jabberId ?? ''}>${x.reach?.transports.join(' → ') || '-'}</td>
              </tr>`,
            )}
          </tbody>
        </table></div>
      </section>
    </main>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the static "Loading…" placeholder
render(html`<${App} />`, root);
