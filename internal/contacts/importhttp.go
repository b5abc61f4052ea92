package contacts

import (
	"mime"
	"net/http"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

// uploadTimeout replaces the server's read timeout for an import upload:
// a large file over a slow link takes longer than any JSON request.
const uploadTimeout = time.Hour

// importMediaTypes maps the accepted Content-Types to formats.
var importMediaTypes = map[string]string{
	"text/csv":              FormatCSV,
	"application/csv":       FormatCSV,
	"application/x-ndjson":  FormatNDJSON,
	"application/ndjson":    FormatNDJSON,
	"application/jsonl":     FormatNDJSON,
	"application/x-jsonl":   FormatNDJSON,
	"application/jsonlines": FormatNDJSON,
}

func (h *HTTP) registerImportRoutes(r Routes) {
	r.HandleAPI("POST /api/v1/contacts/imports", h.startImport)
	r.HandleAPI("GET /api/v1/contacts/imports/{id}", h.getImport)
	r.HandleAPI("GET /api/v1/contacts/imports/{id}/errors", h.importErrors)
	r.HandleAPI("DELETE /api/v1/contacts/imports/{id}", h.cancelImport)
}

// startImport receives the file and answers 202 with the import, whose
// progress GET .../imports/{id} reports.
func (h *HTTP) startImport(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := httpapi.CheckParams(v, "mode"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	mode := v.Get("mode")
	if mode == "" {
		mode = ModeCreate
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	format, ok := importMediaTypes[mt]
	if !ok {
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "unsupported_media_type",
			"send the file as text/csv or application/x-ndjson (got %q)", r.Header.Get("Content-Type")))
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(uploadTimeout))
	imp, err := h.imports.Start(r.Context(), httpapi.TenantID(r.Context()), format, mode, r.Body)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/contacts/imports/"+imp.ID)
	httpapi.WriteJSON(w, http.StatusAccepted, imp)
}

func (h *HTTP) getImport(w http.ResponseWriter, r *http.Request) {
	imp, err := h.imports.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, imp)
}

type errorsCursor struct {
	After int64 `json:"r"`
}

func (h *HTTP) importErrors(w http.ResponseWriter, r *http.Request) {
	if err := httpapi.CheckParams(r.URL.Query(), "limit", "cursor"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	limit, err := httpapi.ParseLimit(r, 100, maxPageSize)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var cur errorsCursor
	if c := r.URL.Query().Get("cursor"); c != "" {
		if err := httpapi.DecodeCursor(c, &cur); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	}
	errs, err := h.imports.Errors(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), cur.After, limit+1)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	next := ""
	if len(errs) > limit {
		errs = errs[:limit]
		next = httpapi.EncodeCursor(errorsCursor{After: errs[len(errs)-1].Row})
	}
	httpapi.WritePage(w, errs, next)
}

func (h *HTTP) cancelImport(w http.ResponseWriter, r *http.Request) {
	imp, err := h.imports.Cancel(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, imp)
}
