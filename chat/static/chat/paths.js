// Where the server's routes are: read from the page (the chat-config JSON), never assumed,
// so the chat works under any URL prefix a host site mounts it at (docs/embedding.md).

const configured = document.getElementById("chat-config");
const apiBase = (configured && JSON.parse(configured.textContent).apiBase) || "/api/";

/** The URL of the REST API's `path` ("rooms/3/join"), under wherever the API is mounted. */
export function apiUrl(path) {
  return apiBase + path;
}
