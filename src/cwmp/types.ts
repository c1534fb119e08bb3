/**
 * Typed CWMP (TR-069 Amendment 6) messages, in the standard's own names.
 * The codec (soap.ts) turns envelopes into these and back; nothing else touches XML.
 */

/** The cwmp namespace version of an envelope: urn:dslforum-org:cwmp-1-N. */
export type CwmpVersion = '1-0' | '1-1' | '1-2' | '1-3' | '1-4';
export const CWMP_VERSIONS: readonly CwmpVersion[] = ['1-0', '1-1', '1-2', '1-3', '1-4'];
export const cwmpNamespace = (v: CwmpVersion): string => `urn:dslforum-org:cwmp-${v}`;

/** xsi:type of a parameter value, e.g. "xsd:string", "xsd:unsignedInt", "xsd:boolean". */
export type XsdType = string;

export interface DeviceIdStruct {
  manufacturer: string;
  oui: string;
  productClass: string;
  serialNumber: string;
}

export interface EventStruct {
  eventCode: string;
  commandKey: string;
}

export interface ParameterValueStruct {
  name: string;
  value: string;
  /** xsi:type as sent or to send; "xsd:string" when the peer sent none. */
  type: XsdType;
}

export interface ParameterInfoStruct {
  name: string;
  writable: boolean;
}

export interface ParameterAttributeStruct {
  name: string;
  notification: number;
  accessList: string[];
}

export interface SetParameterAttributesStruct {
  name: string;
  notificationChange: boolean;
  notification: number;
  accessListChange: boolean;
  accessList: string[];
}

export interface FaultStruct {
  faultCode: number;
  faultString: string;
}

export interface SetParameterValuesFaultStruct {
  parameterName: string;
  faultCode: number;
  faultString: string;
}

// ---------------------------------------------------------------- CPE -> ACS requests

export interface Inform {
  method: 'Inform';
  deviceId: DeviceIdStruct;
  event: EventStruct[];
  maxEnvelopes: number;
  currentTime: string;
  retryCount: number;
  parameterList: ParameterValueStruct[];
}

export interface TransferComplete {
  method: 'TransferComplete';
  commandKey: string;
  fault: FaultStruct;
  startTime: string;
  completeTime: string;
}

export interface AutonomousTransferComplete {
  method: 'AutonomousTransferComplete';
  announceURL: string;
  transferURL: string;
  isDownload: boolean;
  fileType: string;
  fileSize: number;
  targetFileName: string;
  fault: FaultStruct;
  startTime: string;
  completeTime: string;
}

/** GetRPCMethods is sent by either side with the same shape. */
export interface GetRPCMethods {
  method: 'GetRPCMethods';
}

/** One argument of a RequestDownload (TR-069 A.4.2.2 FileTypeArg). */
export interface ArgStruct {
  name: string;
  value: string;
}

/** TR-069 A.4.2.2: the CPE asks the ACS to start a Download of this file type. */
export interface RequestDownload {
  method: 'RequestDownload';
  fileType: string;
  fileTypeArg: ArgStruct[];
}

/** TR-069 A.4.2.1: a web page on the CPE relays a user's action to the ACS. */
export interface Kicked {
  method: 'Kicked';
  command: string;
  referer: string;
  arg: string;
  next: string;
}

/** Success (faultCode 0) or failure of one Deployment Unit operation (TR-069 A.4.2.3). */
export interface DeploymentUnitFaultStruct {
  faultCode: number;
  faultString: string;
}

/** The result of one Deployment Unit operation of a ChangeDUState (TR-069 A.4.2.3). */
export interface OpResultStruct {
  uuid: string;
  deploymentUnitRef: string;
  version: string;
  /** "Installed", "Uninstalled" or "Failed". */
  currentState: string;
  resolved: boolean;
  /** Comma-separated list of execution unit references. */
  executionUnitRefList: string;
  startTime: string;
  completeTime: string;
  fault: DeploymentUnitFaultStruct;
}

/** The result of a Deployment Unit operation the CPE did on its own (TR-069 A.4.2.4). */
export interface AutonOpResultStruct extends OpResultStruct {
  /** "Install", "Update", "Uninstall" or a vendor operation. */
  operationPerformed: string;
}

/** TR-069 A.4.2.3 (cwmp-1-2 and later): the operations of a ChangeDUState completed. */
export interface DUStateChangeComplete {
  method: 'DUStateChangeComplete';
  results: OpResultStruct[];
  commandKey: string;
}

/** TR-069 A.4.2.4 (cwmp-1-2 and later): Deployment Unit operations the CPE did on its own. */
export interface AutonomousDUStateChangeComplete {
  method: 'AutonomousDUStateChangeComplete';
  results: AutonOpResultStruct[];
}

// ---------------------------------------------------------------- ACS -> CPE requests

export interface GetParameterNames {
  method: 'GetParameterNames';
  parameterPath: string;
  nextLevel: boolean;
}

export interface GetParameterValues {
  method: 'GetParameterValues';
  parameterNames: string[];
}

export interface SetParameterValues {
  method: 'SetParameterValues';
  parameterList: ParameterValueStruct[];
  parameterKey: string;
}

export interface GetParameterAttributes {
  method: 'GetParameterAttributes';
  parameterNames: string[];
}

export interface SetParameterAttributes {
  method: 'SetParameterAttributes';
  parameterList: SetParameterAttributesStruct[];
}

export interface AddObject {
  method: 'AddObject';
  /** Path of the table, ending in "." */
  objectName: string;
  parameterKey: string;
}

export interface DeleteObject {
  method: 'DeleteObject';
  /** Path of the instance, ending in "." */
  objectName: string;
  parameterKey: string;
}

export interface Reboot {
  method: 'Reboot';
  commandKey: string;
}

export interface FactoryReset {
  method: 'FactoryReset';
}

export interface Download {
  method: 'Download';
  commandKey: string;
  fileType: string;
  url: string;
  username: string;
  password: string;
  fileSize: number;
  targetFileName: string;
  delaySeconds: number;
  successURL: string;
  failureURL: string;
}

export interface Upload {
  method: 'Upload';
  commandKey: string;
  fileType: string;
  url: string;
  username: string;
  password: string;
  delaySeconds: number;
}

export interface ScheduleInform {
  method: 'ScheduleInform';
  delaySeconds: number;
  commandKey: string;
}

// ---------------------------------------------------------------- responses

export interface InformResponse {
  method: 'InformResponse';
  maxEnvelopes: number;
}

export interface TransferCompleteResponse {
  method: 'TransferCompleteResponse';
}

export interface AutonomousTransferCompleteResponse {
  method: 'AutonomousTransferCompleteResponse';
}

export interface RequestDownloadResponse {
  method: 'RequestDownloadResponse';
}

/** TR-069 A.4.2.1: the URL the CPE's web page sends the user on to. */
export interface KickedResponse {
  method: 'KickedResponse';
  nextURL: string;
}

export interface DUStateChangeCompleteResponse {
  method: 'DUStateChangeCompleteResponse';
}

export interface AutonomousDUStateChangeCompleteResponse {
  method: 'AutonomousDUStateChangeCompleteResponse';
}

export interface GetRPCMethodsResponse {
  method: 'GetRPCMethodsResponse';
  methodList: string[];
}

export interface GetParameterNamesResponse {
  method: 'GetParameterNamesResponse';
  parameterList: ParameterInfoStruct[];
}

export interface GetParameterValuesResponse {
  method: 'GetParameterValuesResponse';
  parameterList: ParameterValueStruct[];
}

export interface SetParameterValuesResponse {
  method: 'SetParameterValuesResponse';
  status: number;
}

export interface GetParameterAttributesResponse {
  method: 'GetParameterAttributesResponse';
  parameterList: ParameterAttributeStruct[];
}

export interface SetParameterAttributesResponse {
  method: 'SetParameterAttributesResponse';
}

export interface AddObjectResponse {
  method: 'AddObjectResponse';
  instanceNumber: number;
  status: number;
}

export interface DeleteObjectResponse {
  method: 'DeleteObjectResponse';
  status: number;
}

export interface RebootResponse {
  method: 'RebootResponse';
}

export interface FactoryResetResponse {
  method: 'FactoryResetResponse';
}

export interface DownloadResponse {
  method: 'DownloadResponse';
  status: number;
  startTime: string;
  completeTime: string;
}

export interface UploadResponse {
  method: 'UploadResponse';
  status: number;
  startTime: string;
  completeTime: string;
}

export interface ScheduleInformResponse {
  method: 'ScheduleInformResponse';
}

/**
 * A SOAP Fault carrying a cwmp:Fault (TR-069 A.5). faultcode is "Client" for
 * 9003/9005-9008-style request errors and "Server" otherwise (8xxx for ACS faults).
 */
export interface Fault {
  method: 'Fault';
  soapFaultCode: 'Client' | 'Server';
  faultCode: number;
  faultString: string;
  /** Only for faults on SetParameterValues (A.3.2.1). */
  setParameterValuesFault: SetParameterValuesFaultStruct[];
}

// ---------------------------------------------------------------- unions

/** RPCs the ACS sends to a CPE (what the session engine queues). */
export type AcsRequest =
  | GetRPCMethods
  | GetParameterNames
  | GetParameterValues
  | SetParameterValues
  | GetParameterAttributes
  | SetParameterAttributes
  | AddObject
  | DeleteObject
  | Reboot
  | FactoryReset
  | Download
  | Upload
  | ScheduleInform;

/** Responses a CPE sends to ACS requests. */
export type CpeResponse =
  | GetRPCMethodsResponse
  | GetParameterNamesResponse
  | GetParameterValuesResponse
  | SetParameterValuesResponse
  | GetParameterAttributesResponse
  | SetParameterAttributesResponse
  | AddObjectResponse
  | DeleteObjectResponse
  | RebootResponse
  | FactoryResetResponse
  | DownloadResponse
  | UploadResponse
  | ScheduleInformResponse;

/** Requests a CPE sends to the ACS. */
export type CpeRequest =
  | Inform
  | TransferComplete
  | AutonomousTransferComplete
  | GetRPCMethods
  | RequestDownload
  | Kicked
  | DUStateChangeComplete
  | AutonomousDUStateChangeComplete;

/** Responses the ACS sends to CPE requests. */
export type AcsResponse =
  | InformResponse
  | TransferCompleteResponse
  | AutonomousTransferCompleteResponse
  | GetRPCMethodsResponse
  | RequestDownloadResponse
  | KickedResponse
  | DUStateChangeCompleteResponse
  | AutonomousDUStateChangeCompleteResponse;

export type CwmpMessage = AcsRequest | CpeResponse | CpeRequest | AcsResponse | Fault;
export type CwmpMethod = CwmpMessage['method'];

/**
 * One SOAP envelope: header fields plus exactly one body message. We always answer an Inform
 * with MaxEnvelopes 1, whatever the CPE offered (TR-069 A.3.3.1).
 */
export interface SoapEnvelope {
  cwmpVersion: CwmpVersion;
  /** cwmp:ID header; echoed in the response to a request. */
  id: string | null;
  /** cwmp:HoldRequests (ACS -> CPE): true asks the CPE to send no requests yet. */
  holdRequests?: boolean;
  /** cwmp:NoMoreRequests (deprecated, CWMP 1.0 CPEs). */
  noMoreRequests?: boolean;
  body: CwmpMessage;
}

/** The response method name for each ACS request (a CPE answering otherwise is a protocol error). */
export const RESPONSE_OF: Record<AcsRequest['method'], CpeResponse['method']> = {
  GetRPCMethods: 'GetRPCMethodsResponse',
  GetParameterNames: 'GetParameterNamesResponse',
  GetParameterValues: 'GetParameterValuesResponse',
  SetParameterValues: 'SetParameterValuesResponse',
  GetParameterAttributes: 'GetParameterAttributesResponse',
  SetParameterAttributes: 'SetParameterAttributesResponse',
  AddObject: 'AddObjectResponse',
  DeleteObject: 'DeleteObjectResponse',
  Reboot: 'RebootResponse',
  FactoryReset: 'FactoryResetResponse',
  Download: 'DownloadResponse',
  Upload: 'UploadResponse',
  ScheduleInform: 'ScheduleInformResponse',
};

/** CWMP fault codes (TR-069 A.5.1). ACS faults 8000-8005, CPE faults 9000-9019. */
export const CwmpFault = {
  MethodNotSupported: 9000,
  RequestDenied: 9001,
  InternalError: 9002,
  InvalidArguments: 9003,
  ResourcesExceeded: 9004,
  InvalidParameterName: 9005,
  InvalidParameterType: 9006,
  InvalidParameterValue: 9007,
  NonWritableParameter: 9008,
  NotificationRequestRejected: 9009,
  DownloadFailure: 9010,
  UploadFailure: 9011,
  FileTransferAuthFailure: 9012,
  UnsupportedTransferProtocol: 9013,
  AcsMethodNotSupported: 8000,
  AcsRequestDenied: 8001,
  AcsInternalError: 8002,
  AcsInvalidArguments: 8003,
  AcsResourcesExceeded: 8004,
  AcsRetryRequest: 8005,
} as const;
