import { LitElement, html, css } from 'lit';
import { JsonRpc } from 'jsonrpc';
import '@vaadin/button';
import '@vaadin/text-field';
import '@vaadin/grid';
import '@vaadin/grid/vaadin-grid-sort-column.js';

/**
 * The served model, its live batches and the last outcomes; a form to submit a knowledge update; consolidate, undo
 * and roll back.
 */
export class QwcMemitModel extends LitElement {

    jsonRpc = new JsonRpc(this);

    static styles = css`
        :host { display: flex; flex-direction: column; gap: 1em; padding: 1em; }
        .facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
        .facts span:nth-child(odd) { color: var(--lumo-contrast-60pct); }
        .form { display: flex; gap: 0.5em; align-items: baseline; flex-wrap: wrap; }
        .outcome { font-family: monospace; }
        h3 { margin: 0.5em 0 0 0; }
    `;

    static properties = {
        _model: { state: true },
        _batches: { state: true },
        _outcomes: { state: true },
        _message: { state: true }
    };

    connectedCallback() {
        super.connectedCallback();
        this._refresh();
    }

    _refresh() {
        this.jsonRpc.getModel().then(r => this._model = r.result);
        this.jsonRpc.getBatches().then(r => this._batches = r.result).catch(() => this._batches = []);
        this.jsonRpc.getOutcomes().then(r => this._outcomes = r.result);
    }

    render() {
        if (!this._model) {
            return html`<span>Loading…</span>`;
        }
        if (!this._model.served) {
            return html`<span id="not-served">No model is served: ${this._model.reason}</span>`;
        }
        const m = this._model;
        return html`
            <div class="facts" id="model">
                <span>Checkpoint</span><span>${m.path}</span>
                <span>Architecture</span><span>${m.architecture}, ${m.layers} layers, d_model ${m.dModel}, d_ff ${m.dFf}</span>
                <span>Parameters</span><span>${m.parameters.toLocaleString()}</span>
                <span>Weights</span><span>${m.dtype} on ${m.device}: ${(m.residentBytes / 1e6).toFixed(1)} MB resident, ${(m.mappedBytes / 1e6).toFixed(1)} MB mapped</span>
                <span>Generation</span><span id="generation">${m.generation} (${m.liveBatches} live batches)</span>
                <span>Edits</span><span>${m.edits}</span>
                <span>Knowledge updates</span><span>${m.knowledgeUpdates}</span>
            </div>
            <h3>Submit a knowledge update</h3>
            <div class="form">
                <vaadin-text-field id="subject" label="Subject" placeholder="Nekeil Krandpudrouk"></vaadin-text-field>
                <vaadin-text-field id="prompt" label="Prompt with {}" placeholder="{} competes in"></vaadin-text-field>
                <vaadin-text-field id="target" label="New target" placeholder="baseball"></vaadin-text-field>
                <vaadin-button id="submit" theme="primary" @click=${this._submit}>Apply</vaadin-button>
                <vaadin-button id="consolidate" @click=${this._consolidate}>Consolidate</vaadin-button>
                <vaadin-button id="undo" @click=${this._undo}>Undo last batch</vaadin-button>
                <vaadin-button id="rollback" theme="error" @click=${this._rollback}>Roll back all</vaadin-button>
            </div>
            <div class="outcome" id="message">${this._message ?? ''}</div>
            <h3>Live batches</h3>
            <vaadin-grid id="batches" .items=${this._batches ?? []} all-rows-visible theme="compact">
                <vaadin-grid-column path="batchId" header="Batch"></vaadin-grid-column>
                <vaadin-grid-column path="generation" header="Generation" auto-width></vaadin-grid-column>
                <vaadin-grid-column path="rewrites" header="Rewrites"></vaadin-grid-column>
                <vaadin-grid-column path="appliedAt" header="Applied at" auto-width></vaadin-grid-column>
            </vaadin-grid>
            <h3>Last outcomes</h3>
            <vaadin-grid id="outcomes" .items=${this._outcomes ?? []} all-rows-visible theme="compact">
                <vaadin-grid-column path="id" header="Event"></vaadin-grid-column>
                <vaadin-grid-column path="status" header="Outcome" auto-width></vaadin-grid-column>
                <vaadin-grid-column path="efficacy" header="Efficacy" auto-width></vaadin-grid-column>
                <vaadin-grid-column path="reason" header="Reason"></vaadin-grid-column>
            </vaadin-grid>
        `;
    }

    _value(id) {
        const field = this.shadowRoot.getElementById(id);
        return field.value || field.placeholder;
    }

    _submit() {
        const id = 'devui-' + Date.now();
        this._message = 'Computing ' + id + '…';
        this.jsonRpc.submitEdit({ id: id, subject: this._value('subject'), prompt: this._value('prompt'),
                target: this._value('target') })
            .then(r => {
                const o = r.result;
                this._message = o.id + ': ' + o.status + (o.efficacy !== undefined ? ', efficacy ' + o.efficacy.toFixed(3) : '')
                    + (o.reason ? ' (' + o.reason + ')' : '');
                this._refresh();
            })
            .catch(e => this._message = 'Failed: ' + (e.error?.message ?? e));
    }

    _consolidate() {
        this.jsonRpc.consolidate().then(r => { this._message = 'Consolidated: serving generation ' + r.result; this._refresh(); })
            .catch(e => this._message = 'Not consolidated: ' + (e.error?.message ?? e));
    }

    _undo() {
        this.jsonRpc.undo().then(r => { this._message = 'Serving generation ' + r.result; this._refresh(); })
            .catch(e => this._message = 'Failed: ' + (e.error?.message ?? e));
    }

    _rollback() {
        this.jsonRpc.rollback({ batchId: '' }).then(r => { this._message = 'Serving generation ' + r.result; this._refresh(); })
            .catch(e => this._message = 'Failed: ' + (e.error?.message ?? e));
    }
}
customElements.define('qwc-memit-model', QwcMemitModel);
