// Lint: eslint's and typescript-eslint's recommended rules, plus the few house rules that matter.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { boundariesPlugin } from "./scripts/lint/package-boundaries.js";

export default tseslint.config(
  { ignores: ["**/node_modules/**", ".cache/**", "charts/**", "**/*.d.ts", "e2e/cluster/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2024, sourceType: "module" },
    plugins: { switchboard: boundariesPlugin },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": ["error", { allow: ["warn", "error"] }],
      eqeqeq: ["error", "always"],
      // A package is reached through its package.json exports, never its files (scripts/lint).
      "switchboard/package-boundaries": "error",
    },
  },
  {
    files: ["signaling/bench/**", "e2e/**", "**/*.test.ts", "scripts/**", "*/*/scripts/**"],
    rules: { "no-console": "off" },
  },
);
