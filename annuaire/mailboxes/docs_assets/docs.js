// Renders the OpenAPI description next to this page (openapi.json): operations, parameters,
// bodies, answers and schemas. Only textContent is used: nothing of the description is HTML.
"use strict";

const METHODS = ["get", "put", "post", "patch", "delete", "head", "options"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function refName(ref) { return ref.split("/").pop(); }

function resolve(spec, node) {
  if (!node || !node.$ref) return node;
  return node.$ref.replace(/^#\//, "").split("/").reduce((obj, part) => (obj || {})[part], spec);
}

function typeOf(schema) {
  if (!schema) return el("span", { class: "type" }, "—");
  if (schema.$ref) {
    const name = refName(schema.$ref);
    return el("a", { href: "#schema-" + name, class: "type" }, name);
  }
  if (schema.type === "array") return el("span", { class: "type" }, "tableau de ", typeOf(schema.items));
  const parts = [];
  if (schema.type) parts.push([].concat(schema.type).join(" | "));
  if (schema.enum) parts.push("une de : " + schema.enum.join(", "));
  const low = schema.minimum, high = schema.maximum;
  if (low !== undefined && high !== undefined) parts.push(`${low}–${high}`);
  else if (low !== undefined) parts.push(`≥ ${low}`);
  else if (high !== undefined) parts.push(`≤ ${high}`);
  if (schema.maxLength !== undefined) parts.push(`≤ ${schema.maxLength} caractères`);
  return el("span", { class: "type" }, parts.join(", ") || "objet");
}

function table(head, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell) => el("td", {}, cell))))));
}

function operation(spec, path, method, op, shared) {
  const body = el("div", {});
  if (op.description) body.append(el("p", { class: "desc" }, op.description));
  const params = [...(shared || []), ...(op.parameters || [])].map((p) => resolve(spec, p));
  if (params.length) {
    body.append(el("h4", {}, "Paramètres"));
    body.append(table(["nom", "où", "obligatoire", "type", "description"], params.map((p) => [
      el("code", {}, p.name), p.in, p.required ? "oui" : "non", typeOf(p.schema), p.description || ""])));
  }
  if (op.requestBody) {
    const rb = resolve(spec, op.requestBody);
    body.append(el("h4", {}, "Corps de la requête" + (rb.required ? " (obligatoire)" : "")));
    if (rb.description) body.append(el("p", { class: "desc" }, rb.description));
    body.append(table(["type de contenu", "schéma", "exemple"], Object.entries(rb.content || {}).map(
      ([media, c]) => [el("code", {}, media), typeOf(c.schema), c.example ? el("code", {}, String(c.example)) : ""])));
  }
  body.append(el("h4", {}, "Réponses"));
  body.append(table(["statut", "description", "contenu"], Object.entries(op.responses || {}).map(([code, r]) => {
    const answer = resolve(spec, r) || {};
    const content = Object.entries(answer.content || {}).map(([media, c]) => el("div", {}, el("code", {}, media), " ",
      typeOf(c.schema)));
    return [el("code", {}, code), answer.description || "", content];
  })));
  const summary = el("summary", {}, el("span", { class: "method " + method }, method.toUpperCase()), path, " ",
    el("span", { class: "summary" }, op.summary ? "— " + op.summary : ""));
  return el("details", { class: "op", id: `${method}-${path}` }, summary, body);
}

function schemaSection(name, schema) {
  const required = new Set(schema.required || []);
  const rows = Object.entries(schema.properties || {}).map(([prop, s]) => [
    el("code", {}, prop), typeOf(s), required.has(prop) ? "oui" : "non", s.description || ""]);
  return el("section", { id: "schema-" + name }, el("h3", {}, name),
    schema.description ? el("p", { class: "desc" }, schema.description) : null,
    rows.length ? table(["champ", "type", "obligatoire", "description"], rows) : el("p", {}, typeOf(schema)));
}

function render(spec) {
  const main = document.getElementById("doc");
  main.textContent = "";
  document.getElementById("titre").textContent = spec.info.title;
  document.title = spec.info.title;
  main.append(el("p", { class: "meta" }, `OpenAPI ${spec.openapi} — version ${spec.info.version}`));
  if (spec.info.description) main.append(el("p", { class: "desc" }, spec.info.description));
  const schemes = Object.entries((spec.components || {}).securitySchemes || {});
  if (schemes.length) {
    main.append(el("h2", {}, "Authentification"));
    main.append(table(["schéma", "type", "description"], schemes.map(([name, s]) => [
      el("code", {}, name), s.scheme ? `${s.type} (${s.scheme})` : s.type, s.description || ""])));
  }
  main.append(el("h2", {}, "Opérations"));
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS) {
      if (item[method]) main.append(operation(spec, path, method, item[method], item.parameters));
    }
  }
  const schemas = Object.entries((spec.components || {}).schemas || {});
  if (schemas.length) {
    main.append(el("h2", {}, "Schémas"));
    for (const [name, schema] of schemas) main.append(schemaSection(name, schema));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const main = document.getElementById("doc");
  fetch(main.dataset.spec, { headers: { Accept: "application/json" } })
    .then((r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); return r.json(); })
    .then(render)
    .catch((err) => {
      main.textContent = "";
      main.append(el("p", { class: "error" }, `La description n'a pas pu être lue (${err.message}).`));
    });
});
