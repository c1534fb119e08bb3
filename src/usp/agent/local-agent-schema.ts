/**
 * The supported model of the proxy-served subtrees (TR-181 Device:2.19, tr-181-2-localagent.xml,
 * tr-181-2-mqtt.xml, tr-181-2-stomp.xml): Device.LocalAgent., Device.MQTT.Client.,
 * Device.STOMP.Connection. and the Device.ScheduleTimer() command. Only what the proxy serves.
 */
import type { ObjectSchema } from '../dm/types.js';
import { obj, ro, rw } from '../dm/schema-builders.js';

export const NOTIF_TYPES = ['ValueChange', 'ObjectCreation', 'ObjectDeletion', 'OperationComplete', 'Event'] as const;
export const REQUEST_STATUS = ['Requested', 'Active', 'Canceling', 'Canceled', 'Success', 'Error'] as const;

export const LOCAL_AGENT_PREFIXES = ['Device.LocalAgent.', 'Device.MQTT.', 'Device.STOMP.', 'Device.ScheduleTimer()'] as const;

export const LOCAL_AGENT_SCHEMA: readonly ObjectSchema[] = [
  // Device. itself carries only the proxy-served command here; the device's own model merges in.
  obj('Device.', [], {
    commands: [{ name: 'ScheduleTimer()', async: true, input: [{ name: 'DelaySeconds', type: 'unsignedInt', mandatory: true }], output: [] }],
  }),
  obj(
    'Device.LocalAgent.',
    [
      ro('EndpointID'),
      ro('SoftwareVersion'),
      ro('UpTime', 'unsignedInt', { valueChange: 'willIgnore' }),
      ro('SupportedProtocols', 'string', { list: true }),
      ro('MTPNumberOfEntries', 'unsignedInt'),
      ro('ControllerNumberOfEntries', 'unsignedInt'),
      ro('SubscriptionNumberOfEntries', 'unsignedInt'),
      ro('RequestNumberOfEntries', 'unsignedInt'),
    ],
    {
      events: [
        { name: 'Periodic!', args: [] },
        {
          name: 'TransferComplete!',
          args: [
            { name: 'Command' },
            { name: 'CommandKey' },
            { name: 'Requestor' },
            { name: 'TransferType' },
            { name: 'Affected' },
            { name: 'TransferURL' },
            { name: 'StartTime' },
            { name: 'CompleteTime' },
            { name: 'FaultCode' },
            { name: 'FaultString' },
          ],
        },
      ],
    },
  ),
  obj(
    'Device.LocalAgent.MTP.{i}.',
    [
      ro('Alias'),
      ro('Enable', 'boolean'),
      ro('Protocol', 'string', { enumeration: ['CoAP', 'STOMP', 'WebSocket', 'MQTT', 'UDS'] }),
      ro('Status', 'string', { enumeration: ['Up', 'Down', 'Error', 'Disabled'] }),
    ],
    { uniqueKeys: [['Alias']] },
  ),
  obj('Device.LocalAgent.MTP.{i}.STOMP.', [ro('Reference'), ro('Destination'), ro('DestinationFromServer')]),
  obj('Device.LocalAgent.MTP.{i}.WebSocket.', [ro('Interfaces'), ro('Port', 'unsignedInt'), ro('Path'), ro('EnableEncryption', 'boolean')]),
  obj('Device.LocalAgent.MTP.{i}.MQTT.', [ro('Reference'), ro('ResponseTopicConfigured'), ro('ResponseTopicDiscovered'), ro('PublishQoS', 'unsignedInt')]),
  obj(
    'Device.LocalAgent.Controller.{i}.',
    [
      rw('Alias', 'string', { writeOnce: true }),
      ro('EndpointID'),
      rw('Enable', 'boolean', { default: 'true' }),
      rw('AssignedRole', 'string', { list: true, default: '' }),
      ro('InheritedRole', 'string', { list: true }),
      rw('ProvisioningCode', 'string', { default: '' }),
      rw('PeriodicNotifInterval', 'unsignedInt'),
      rw('PeriodicNotifTime', 'dateTime', { default: '0001-01-01T00:00:00Z' }),
      rw('USPNotifRetryMinimumWaitInterval', 'unsignedInt'),
      rw('USPNotifRetryIntervalMultiplier', 'unsignedInt'),
      ro('MTPNumberOfEntries', 'unsignedInt'),
      ro('BootParameterNumberOfEntries', 'unsignedInt'),
    ],
    {
      access: 'deleteOnly',
      uniqueKeys: [['Alias'], ['EndpointID']],
      commands: [{ name: 'SendOnBoardRequest()', async: false, input: [], output: [] }],
    },
  ),
  obj('Device.LocalAgent.Controller.{i}.MTP.{i}.', [ro('Alias'), ro('Enable', 'boolean'), ro('Protocol')], { uniqueKeys: [['Alias']] }),
  obj('Device.LocalAgent.Controller.{i}.MTP.{i}.STOMP.', [ro('Reference'), ro('Destination')]),
  obj('Device.LocalAgent.Controller.{i}.MTP.{i}.WebSocket.', [ro('Host'), ro('Port', 'unsignedInt'), ro('Path'), ro('EnableEncryption', 'boolean')]),
  obj('Device.LocalAgent.Controller.{i}.MTP.{i}.MQTT.', [ro('Reference'), ro('Topic')]),
  obj(
    'Device.LocalAgent.Controller.{i}.BootParameter.{i}.',
    [rw('Alias', 'string', { writeOnce: true }), rw('Enable', 'boolean', { default: 'false' }), rw('ParameterName', 'string', { default: '' })],
    { access: 'addDelete', uniqueKeys: [['Alias'], ['ParameterName']] },
  ),
  obj(
    'Device.LocalAgent.Subscription.{i}.',
    [
      rw('Alias', 'string', { writeOnce: true }),
      rw('Enable', 'boolean', { default: 'false' }),
      rw('ID', 'string', { immutable: true }),
      rw('Recipient'),
      ro('CreationDate', 'dateTime'),
      rw('NotifType', 'string', { enumeration: NOTIF_TYPES, default: '' }),
      rw('ReferenceList', 'string', { list: true, default: '' }),
      rw('Persistent', 'boolean', { default: 'false' }),
      rw('TimeToLive', 'unsignedInt', { default: '0' }),
      rw('NotifRetry', 'boolean', { default: 'false' }),
      rw('NotifExpiration', 'unsignedInt', { default: '0' }),
    ],
    { access: 'addDelete', uniqueKeys: [['Alias'], ['Recipient', 'ID']] },
  ),
  obj(
    'Device.LocalAgent.Request.{i}.',
    [ro('Alias'), ro('Originator'), ro('Command'), ro('CommandKey'), ro('Status', 'string', { enumeration: REQUEST_STATUS })],
    { uniqueKeys: [['Alias']], commands: [{ name: 'Cancel()', async: false, input: [], output: [] }] },
  ),
  // TR-369 "Theory of Operations" (Controller Trust), TR-181 LocalAgent.ControllerTrust.
  obj('Device.LocalAgent.ControllerTrust.', [
    ro('UntrustedRole', 'string', { list: true }),
    ro('SecuredRoles', 'string', { list: true }),
    ro('RoleNumberOfEntries', 'unsignedInt'),
    ro('CredentialNumberOfEntries', 'unsignedInt'),
  ]),
  obj(
    'Device.LocalAgent.ControllerTrust.Role.{i}.',
    [
      rw('Alias', 'string', { writeOnce: true }),
      rw('Enable', 'boolean', { default: 'false' }),
      rw('Name', 'string', { default: '' }),
      ro('PermissionNumberOfEntries', 'unsignedInt'),
    ],
    { access: 'addDelete', uniqueKeys: [['Alias'], ['Name']] },
  ),
  obj(
    'Device.LocalAgent.ControllerTrust.Role.{i}.Permission.{i}.',
    [
      rw('Alias', 'string', { writeOnce: true }),
      rw('Enable', 'boolean', { default: 'false' }),
      rw('Order', 'unsignedInt', { default: '0' }),
      rw('Targets', 'string', { list: true, default: '' }),
      rw('Param', 'string', { default: '----' }),
      rw('Obj', 'string', { default: '----' }),
      rw('InstantiatedObj', 'string', { default: '----' }),
      rw('CommandEvent', 'string', { default: '----' }),
    ],
    { access: 'addDelete', uniqueKeys: [['Alias'], ['Order']] },
  ),
  // No CA is trusted to hand out Roles (controllers get theirs by Endpoint ID): the table stays empty.
  obj(
    'Device.LocalAgent.ControllerTrust.Credential.{i}.',
    [
      ro('Alias'),
      ro('Enable', 'boolean'),
      ro('Role', 'string', { list: true }),
      ro('Credential'),
      ro('AllowedUses', 'string', { enumeration: ['MTP-only', 'MTP-and-USP', 'MTP-and-broker'] }),
    ],
    { uniqueKeys: [['Alias'], ['Credential']] },
  ),
  obj('Device.MQTT.', [ro('ClientNumberOfEntries', 'unsignedInt')]),
  obj(
    'Device.MQTT.Client.{i}.',
    [
      ro('Alias'),
      ro('Enable', 'boolean'),
      ro('Status'),
      ro('BrokerAddress'),
      ro('BrokerPort', 'unsignedInt'),
      ro('ProtocolVersion'),
      ro('ClientID'),
      ro('KeepAliveTime', 'unsignedInt'),
    ],
    { uniqueKeys: [['Alias']] },
  ),
  obj('Device.STOMP.', [ro('ConnectionNumberOfEntries', 'unsignedInt')]),
  obj(
    'Device.STOMP.Connection.{i}.',
    [
      ro('Alias'),
      ro('Enable', 'boolean'),
      ro('Status'),
      ro('Host'),
      ro('Port', 'unsignedInt'),
      ro('Username'),
      ro('VirtualHost'),
      ro('EnableHeartbeats', 'boolean'),
      ro('OutgoingHeartbeat', 'unsignedInt'),
      ro('IncomingHeartbeat', 'unsignedInt'),
      ro('ServerRetryInitialInterval', 'unsignedInt'),
      ro('ServerRetryMaxInterval', 'unsignedInt'),
    ],
    { uniqueKeys: [['Alias']] },
  ),
];
