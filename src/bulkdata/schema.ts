/**
 * The supported model of Device.BulkData. as the proxy serves it for every agent (TR-181
 * tr-181-2-bulkdata.xml; the Push! event and the USPEventNotif protocol of TR-369 "Bulk Data
 * Collection"). Only what the proxy implements: HTTP and USPEventNotif, JSON and CSV.
 */
import type { ObjectSchema } from '../usp/dm/types.js';
import { obj, ro, rw } from '../usp/dm/schema-builders.js';

export const BULKDATA_PREFIXES = ['Device.BulkData.'] as const;
export const PROFILE_TABLE = 'Device.BulkData.Profile.';
export const PROFILE_SCHEMA = 'Device.BulkData.Profile.{i}.';
export const PROTOCOLS = ['HTTP', 'USPEventNotif'] as const;
export const ENCODING_TYPES = ['JSON', 'CSV'] as const;
export const TIMESTAMPS = ['Unix-Epoch', 'ISO-8601', 'None'] as const;

export const BULKDATA_SCHEMA: readonly ObjectSchema[] = [
  obj('Device.BulkData.', [
    rw('Enable', 'boolean', { default: 'true' }),
    ro('Status', 'string', { enumeration: ['Enabled', 'Disabled', 'Error'] }),
    ro('MinReportingInterval', 'unsignedInt'),
    ro('Protocols', 'string', { list: true }),
    ro('EncodingTypes', 'string', { list: true }),
    ro('ParameterWildCardSupported', 'boolean'),
    ro('MaxNumberOfProfiles', 'int'),
    ro('MaxNumberOfParameterReferences', 'int'),
    ro('ProfileNumberOfEntries', 'unsignedInt'),
  ]),
  obj(
    PROFILE_SCHEMA,
    [
      rw('Enable', 'boolean', { default: 'false' }),
      rw('Alias', 'string', { writeOnce: true }),
      rw('Name', 'string', { default: '' }),
      rw('NumberOfRetainedFailedReports', 'int', { default: '0' }),
      rw('Protocol', 'string', { enumeration: PROTOCOLS, default: 'USPEventNotif' }),
      rw('EncodingType', 'string', { enumeration: ENCODING_TYPES, default: 'JSON' }),
      rw('ReportingInterval', 'unsignedInt', { default: '86400' }),
      rw('TimeReference', 'dateTime', { default: '0001-01-01T00:00:00Z' }),
      ro('ParameterNumberOfEntries', 'unsignedInt'),
    ],
    {
      access: 'addDelete',
      uniqueKeys: [['Alias']],
      events: [{ name: 'Push!', args: [{ name: 'Data' }] }],
      // TR-181 Profile.{i}.ForceCollection(): a report now, outside the interval.
      commands: [{ name: 'ForceCollection()', async: false, input: [], output: [] }],
    },
  ),
  obj(
    'Device.BulkData.Profile.{i}.Parameter.{i}.',
    [rw('Name', 'string', { default: '' }), rw('Reference', 'string', { default: '' }), rw('Exclude', 'boolean', { default: 'false' })],
    { access: 'addDelete' },
  ),
  obj('Device.BulkData.Profile.{i}.CSVEncoding.', [
    rw('FieldSeparator', 'string', { default: ',' }),
    rw('RowSeparator', 'string', { default: '&#13;&#10;' }),
    rw('EscapeCharacter', 'string', { default: '&quot;' }),
    rw('ReportFormat', 'string', { enumeration: ['ParameterPerRow', 'ParameterPerColumn'], default: 'ParameterPerColumn' }),
    rw('RowTimestamp', 'string', { enumeration: TIMESTAMPS, default: 'Unix-Epoch' }),
  ]),
  obj('Device.BulkData.Profile.{i}.JSONEncoding.', [
    rw('ReportFormat', 'string', { enumeration: ['ObjectHierarchy', 'NameValuePair'], default: 'ObjectHierarchy' }),
    rw('ReportTimestamp', 'string', { enumeration: TIMESTAMPS, default: 'Unix-Epoch' }),
  ]),
  obj('Device.BulkData.Profile.{i}.HTTP.', [
    rw('URL', 'string', { default: '' }),
    rw('Username', 'string', { default: '' }),
    // TR-181: "When read, this parameter returns an empty string" (a secret).
    { name: 'Password', type: 'string', access: 'writeOnly', default: '' },
    ro('CompressionsSupported', 'string', { list: true }),
    rw('Compression', 'string', { enumeration: ['None', 'GZIP'], default: 'None' }),
    ro('MethodsSupported', 'string', { list: true }),
    rw('Method', 'string', { enumeration: ['POST', 'PUT'], default: 'POST' }),
    rw('UseDateHeader', 'boolean', { default: 'true' }),
    rw('RetryEnable', 'boolean', { default: 'false' }),
    rw('RetryMinimumWaitInterval', 'unsignedInt', { default: '5' }),
    rw('RetryIntervalMultiplier', 'unsignedInt', { default: '2000' }),
    ro('RequestURIParameterNumberOfEntries', 'unsignedInt'),
    rw('PersistAcrossReboot', 'boolean', { default: 'false' }),
  ]),
  obj('Device.BulkData.Profile.{i}.HTTP.RequestURIParameter.{i}.', [rw('Name', 'string', { default: '' }), rw('Reference', 'string', { default: '' })], {
    access: 'addDelete',
  }),
];
