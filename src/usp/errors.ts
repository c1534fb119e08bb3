/**
 * USP error codes (TR-369 1.4, "Error Codes" in the Messages section, and "USP Record Errors"
 * in the MTP section) as one table, plus the typed error the USP side throws.
 *
 * 7000..7031 are Message-level codes (Error Msg, *Resp err_code, ParamError), 7100..7106 are
 * Record-level codes (Error Msg sent per R-MTP.5, DisconnectRecord.reason_code per R-MTP.9).
 * 7200..7299 are data-model defined and 7800..7999 vendor defined: errorCodeName() names the
 * range for those.
 */

/** Code -> symbolic name. Names follow the spec's "Name" column. */
export const UspErrorCode = {
  MESSAGE_FAILED: 7000,
  MESSAGE_NOT_SUPPORTED: 7001,
  REQUEST_DENIED: 7002,
  INTERNAL_ERROR: 7003,
  INVALID_ARGUMENTS: 7004,
  RESOURCES_EXCEEDED: 7005,
  PERMISSION_DENIED: 7006,
  INVALID_CONFIGURATION: 7007,
  INVALID_PATH_SYNTAX: 7008,
  PARAMETER_ACTION_FAILED: 7009,
  UNSUPPORTED_PARAMETER: 7010,
  INVALID_TYPE: 7011,
  INVALID_VALUE: 7012,
  PARAM_NOT_WRITABLE: 7013,
  VALUE_CONFLICT: 7014,
  OPERATION_ERROR: 7015,
  OBJECT_DOES_NOT_EXIST: 7016,
  OBJECT_NOT_CREATED: 7017,
  OBJECT_NOT_A_TABLE: 7018,
  OBJECT_NOT_CREATABLE: 7019,
  OBJECT_NOT_UPDATED: 7020,
  REQUIRED_PARAM_FAILED: 7021,
  COMMAND_FAILURE: 7022,
  COMMAND_CANCELED: 7023,
  DELETE_FAILURE: 7024,
  DUPLICATE_UNIQUE_KEY: 7025,
  INVALID_PATH: 7026,
  INVALID_COMMAND_ARGS: 7027,
  REGISTER_FAILURE: 7028,
  ALREADY_IN_USE: 7029,
  DEREGISTER_FAILURE: 7030,
  PATH_ALREADY_REGISTERED: 7031,
  // Record errors (TR-369 "USP Record Errors")
  RECORD_NOT_PARSED: 7100,
  SECURE_SESSION_REQUIRED: 7101,
  SECURE_SESSION_NOT_SUPPORTED: 7102,
  SAR_NOT_SUPPORTED: 7103,
  RECORD_FIELD_INVALID: 7104,
  SESSION_CONTEXT_TERMINATED: 7105,
  SESSION_CONTEXT_NOT_ALLOWED: 7106,
} as const;

export type UspErrorCodeName = keyof typeof UspErrorCode;
export type UspErrorCodeValue = (typeof UspErrorCode)[UspErrorCodeName];

/** The spec's name of each code (used as the default err_msg). */
export const USP_ERROR_NAMES: Readonly<Record<UspErrorCodeValue, string>> = {
  7000: 'Message failed',
  7001: 'Message not supported',
  7002: 'Request denied (no reason specified)',
  7003: 'Internal error',
  7004: 'Invalid arguments',
  7005: 'Resources exceeded',
  7006: 'Permission denied',
  7007: 'Invalid configuration',
  7008: 'Invalid path syntax',
  7009: 'Parameter action failed',
  7010: 'Unsupported parameter',
  7011: 'Invalid type',
  7012: 'Invalid value',
  7013: 'Attempt to update non-writeable parameter',
  7014: 'Value conflict',
  7015: 'Operation error',
  7016: 'Object does not exist',
  7017: 'Object could not be created',
  7018: 'Object is not a table',
  7019: 'Attempt to create non-creatable object',
  7020: 'Object could not be updated',
  7021: 'Required parameter failed',
  7022: 'Command failure',
  7023: 'Command canceled',
  7024: 'Delete failure',
  7025: 'Object exists with duplicate key',
  7026: 'Invalid path',
  7027: 'Invalid command arguments',
  7028: 'Register failure',
  7029: 'Already in use',
  7030: 'Deregister failure',
  7031: 'Path already registered',
  7100: 'Record could not be parsed',
  7101: 'Secure session required',
  7102: 'Secure session not supported',
  7103: 'Segmentation and reassembly not supported',
  7104: 'Invalid Record value',
  7105: 'Session Context terminated',
  7106: 'Session Context not allowed',
};

/** True for the codes of the table above (not the 7200/7800 ranges). */
export function isKnownUspErrorCode(code: number): code is UspErrorCodeValue {
  return Object.hasOwn(USP_ERROR_NAMES, code);
}

/** The spec's name for a code; ranges for data-model (7200..7299) and vendor (7800..7999) codes. */
export function errorCodeName(code: number): string {
  if (isKnownUspErrorCode(code)) return USP_ERROR_NAMES[code];
  if (code >= 7100 && code <= 7199) return 'USP Record error';
  if (code >= 7200 && code <= 7299) return 'Data model defined error';
  if (code >= 7800 && code <= 7999) return 'Vendor defined error';
  return `Unknown error ${code}`;
}

/** One failed parameter, as carried by Error.param_errs. */
export interface UspParamErrorInfo {
  paramPath: string;
  errCode: number;
  errMsg: string;
}

/**
 * A USP failure that becomes an err_code/err_msg on the wire (an Error Msg, an oper_failure,
 * a requested_path_result error ...). The message defaults to the spec's name of the code.
 */
export class UspError extends Error {
  override name = 'UspError';
  readonly code: number;
  readonly paramErrs: UspParamErrorInfo[];

  constructor(code: number, message?: string, paramErrs: UspParamErrorInfo[] = []) {
    super(message ?? errorCodeName(code));
    this.code = code;
    this.paramErrs = paramErrs;
  }
}
