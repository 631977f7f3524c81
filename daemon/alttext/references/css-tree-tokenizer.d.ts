// @types/css-tree does not describe the package's `css-tree/tokenizer` and `css-tree/utils` entry points.
declare module 'css-tree/tokenizer' {
  export function tokenize(source: string, onToken: (type: number, start: number, end: number) => void): void;
  export const Function: number;
  export const String: number;
  export const Url: number;
  export const WhiteSpace: number;
  export const Comment: number;
  export const RightParenthesis: number;
}
declare module 'css-tree/utils' {
  export const url: { decode(source: string): string };
  export const string: { decode(source: string): string };
}
