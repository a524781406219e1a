// Local media: camera/microphone with device selection, screen share. Browser
// APIs only, no DOM rendering.

/**
 * @typedef {{audioId?: string, videoId?: string}} DeviceChoice
 */

/** @param {DeviceChoice} [choice] @returns {Promise<MediaStream>} */
export async function openLocalMedia(choice = {}) {
  const constraints = {
    audio: choice.audioId ? { deviceId: { exact: choice.audioId } } : true,
    video: {
      ...(choice.videoId ? { deviceId: { exact: choice.videoId } } : {}),
      width: { ideal: 640 },
      height: { ideal: 360 },
      frameRate: { ideal: 24 },
    },
  };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    // No camera (or it is busy): join with the microphone alone rather than not at all.
    if (err && (err.name === "NotFoundError" || err.name === "NotReadableError")) {
      return navigator.mediaDevices.getUserMedia({ audio: constraints.audio, video: false });
    }
    throw err;
  }
}

/** @returns {Promise<{cameras: MediaDeviceInfo[], mics: MediaDeviceInfo[], speakers: MediaDeviceInfo[]}>} */
export async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: devices.filter((d) => d.kind === "videoinput"),
    mics: devices.filter((d) => d.kind === "audioinput"),
    speakers: devices.filter((d) => d.kind === "audiooutput"),
  };
}

/** @returns {Promise<MediaStreamTrack>} the screen's video track */
export async function openScreen() {
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
  return stream.getVideoTracks()[0];
}

/** Human words for getUserMedia failures. */
export function mediaErrorText(err) {
  switch (err?.name) {
    case "NotAllowedError": return "Camera and microphone access was blocked. Allow it in the browser's site settings, then reload.";
    case "NotFoundError": return "No camera or microphone was found.";
    case "NotReadableError": return "The camera or microphone is in use by another application.";
    case "OverconstrainedError": return "The chosen device is not available any more; pick another.";
    default: return `Could not open camera or microphone (${err?.name ?? err}).`;
  }
}
