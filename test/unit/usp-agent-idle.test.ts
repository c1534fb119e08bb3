/**
 * Per-agent state of the proxy-served Device.LocalAgent. (issue 22, memory per device): an agent
 * whose tree is as configured is released when idle (least recently used beyond maxIdleAgents)
 * and seeded again, the same, on next use; an agent with a change or stored rows is kept; the
 * Roles kept per controller follow a change of the rows they come from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/app/config.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { LocalAgent } from '../../src/usp/agent/local-agent.js';

const CTL = 'proto::ctl';
const agent = (i: number): string => `os::000001-IDLE${i}`;
const CONTROLLER_1 = 'Device.LocalAgent.Controller.1.';

function setup(maxIdleAgents: number) {
  const config = loadConfig({ env: {}, overrides: { controllers: [{ endpointId: CTL, role: 'full', mqtt: { topic: '/ctl' } }] } });
  const store = openSqliteStore(':memory:');
  return { la: new LocalAgent(config, store, '1.0', { maxIdleAgents }), store };
}

test('agents as configured are released beyond maxIdleAgents and seeded again the same on next use', async (t) => {
  const { la, store } = setup(2);
  t.after(() => store.close());
  const first = la.model.objectValues(agent(1), CONTROLLER_1);
  assert.equal(first?.EndpointID, CTL);
  for (let i = 2; i <= 5; i++) la.model.objectValues(agent(i), CONTROLLER_1);
  assert.equal(la.model.treeCount, 2, 'only the two most recently used idle agents are held');
  assert.deepEqual(la.model.objectValues(agent(1), CONTROLLER_1), first);
  assert.deepEqual(await la.model.get(agent(1), ['Device.LocalAgent.EndpointID']), new Map([['Device.LocalAgent.EndpointID', agent(1)]]));
});

test('the most recently used idle agent stays; the least recently used goes', (t) => {
  const { la, store } = setup(2);
  t.after(() => store.close());
  const a1 = la.model.tree(agent(1));
  la.model.tree(agent(2));
  assert.equal(la.model.tree(agent(1)), a1, 'used again: now the most recent');
  la.model.tree(agent(3)); // agent 2 goes
  assert.equal(la.model.tree(agent(1)), a1);
  assert.equal(la.model.treeCount, 2);
});

test('the tree just seeded is the one kept with a bound of one, whether or not the other was used since', (t) => {
  const { la, store } = setup(1);
  t.after(() => store.close());
  const a1 = la.model.tree(agent(1));
  la.model.tree(agent(1)); // used again: a second chance, but not against the tree just seeded
  const a2 = la.model.tree(agent(2));
  assert.equal(la.model.treeCount, 1);
  assert.equal(la.model.tree(agent(2)), a2, 'the new tree stays held');
  assert.notEqual(la.model.tree(agent(1)), a1, 'agent 1 was released and is seeded again');
  assert.equal(la.model.treeCount, 1);
});

test('an agent with a change is kept whatever the number of idle agents, with its change', async (t) => {
  const { la, store } = setup(2);
  t.after(() => store.close());
  const set = await la.model.set({ agentEid: agent(1), controllerEid: CTL }, CONTROLLER_1, [{ param: 'PeriodicNotifInterval', value: '77', required: true }]);
  assert.equal(set.ok, true);
  for (let i = 2; i <= 10; i++) la.model.objectValues(agent(i), CONTROLLER_1);
  assert.equal(la.model.treeCount, 3, 'the changed agent and two idle ones');
  assert.equal(la.model.objectValues(agent(1), CONTROLLER_1)?.PeriodicNotifInterval, '77');
});

test('an agent with stored Subscription rows is kept (its seed consumed them)', async (t) => {
  const { store } = setup(1);
  t.after(() => store.close());
  await store.putSubscription(agent(1), 1, {
    ID: 'sub-1',
    Enable: 'true',
    Recipient: CONTROLLER_1.slice(0, -1),
    NotifType: 'ValueChange',
    ReferenceList: 'Device.LocalAgent.SoftwareVersion',
  });
  const config = loadConfig({ env: {}, overrides: { controllers: [{ endpointId: CTL, role: 'full', mqtt: { topic: '/ctl' } }] } });
  const la = new LocalAgent(config, store, '1.0', { maxIdleAgents: 1 });
  await la.restore();
  assert.equal(la.subscriptions(agent(1)).length, 1);
  for (let i = 2; i <= 5; i++) la.model.tree(agent(i));
  assert.equal(la.subscriptions(agent(1)).length, 1, 'still there after other agents came and went');
  assert.equal(la.subscriptions(agent(1))[0]?.values.ID, 'sub-1');
});

test("a controller's Roles are kept until the agent's rows change", async (t) => {
  const { la, store } = setup(8);
  t.after(() => store.close());
  const before = la.rolesOf(agent(1), CTL, true);
  assert.ok(before.length > 0);
  assert.equal(la.rolesOf(agent(1), CTL, true), before, 'the same list while nothing changed');
  const set = await la.model.set({ agentEid: agent(1), controllerEid: '' }, CONTROLLER_1, [{ param: 'AssignedRole', value: '', required: true }]);
  assert.equal(set.ok, true);
  const after = la.rolesOf(agent(1), CTL, true);
  assert.notEqual(after, before);
  assert.deepEqual(
    after.map((r) => r.name),
    la.rolesOf(agent(1), CTL, false).map((r) => r.name),
    'without an AssignedRole the controller holds the UntrustedRole',
  );
  assert.equal(la.rolesOf(agent(2), CTL, true).length, before.length, 'other agents unaffected');
});
