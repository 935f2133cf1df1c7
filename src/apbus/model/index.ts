// The AP bus model: a simulated node's cards, queues, drivers and matrix mdevs.
export { ApBusModel, AP_DRIVERS, cardName, queueName } from './ap-bus-model.js';
export type { ApBusModelOptions, ApDriverName, CardSpec, CardState, ModelStats, QueueDriverName, QueueState } from './ap-bus-model.js';
export { ManualClock, SystemClock, type Clock } from './clock.js';
export { ApBusError } from './errors.js';
export { parseCardType, cardTypeString, type CardModeLetter } from './hardware.js';
export { MatrixMdev, MatrixMdevs, formatMatrix, type GuestView, type VfioQueueStatus } from './matrix-mdevs.js';
export { KERNEL_PROFILES, profileFeatures, type KernelProfile, type ProfileFeatures } from './profile.js';
