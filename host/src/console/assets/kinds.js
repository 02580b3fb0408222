// Key Results and Projects are one model: the same screens serve both, named
// and routed by their kind.

export const KEY_RESULT = {
  path: 'key-results', // in the API's and the console's addresses
  key: 'key_result', // the member naming one in the API's documents
  noun: 'Key Result',
  plural: 'Key Results',
};

export const PROJECT = {
  path: 'projects',
  key: 'project',
  noun: 'Project',
  plural: 'Projects',
};
